// errors.js: every error code of docs/PROTOCOL.md, with its name, whether
// it is fatal, and what it means in plain words for the person at the page.

export const ERRORS = {
  1: ["MALFORMED_FRAME", true, "The server could not understand what this page sent. Reload the page."],
  2: ["FRAME_TOO_LARGE", true, "This page sent more than the server accepts at once."],
  3: ["UNSUPPORTED_VERSION", true, "This server does not speak the page's protocol version."],
  4: ["WRONG_STATE", false, "That cannot be done right now; try again in a moment."],
  5: ["UNKNOWN_FRAME_TYPE", false, "The server did not recognise a request from this page."],
  10: ["BAD_CREDENTIALS", false, "Wrong user name or password (or a password the server does not accept)."],
  11: ["NAME_TAKEN", false, "That name is taken already."],
  12: ["REGISTRATION_CLOSED", false, "This server does not let anyone register: ask its operator for an account."],
  13: ["LOCKED_OUT", false, "Too many failed logins: wait before trying again."],
  14: ["NO_DEVICE", false, "This session has no device; log in again."],
  15: ["TOO_MANY_DEVICES", false, "Your account has too many devices: revoke one (confab devices revoke NAME) and log in again."],
  20: ["NO_SUCH_USER", false, "There is no user of that name."],
  21: ["NO_SUCH_GROUP", false, "There is no group of that name."],
  22: ["GROUP_EXISTS", false, "A group of that name exists already."],
  23: ["NOT_A_MEMBER", false, "You are not a member of that group."],
  24: ["ALREADY_MEMBER", false, "You are a member of that group already."],
  25: ["TOO_MANY_GROUPS", false, "You belong to as many groups as allowed; leave one first."],
  26: ["GROUP_FULL", false, "That group is full."],
  27: ["BAD_BODY", false, "The message is empty or too long."],
  28: ["SERVER_GROUPS_FULL", false, "The server has as many groups as it allows; no new group can be created."],
  29: ["NO_SUCH_DEVICE", false, "There is no device of that name."],
  30: ["RATE_LIMITED", false, "Slow down: you are sending too fast."],
  31: ["BUSY", false, "The server is busy; retrying shortly."],
  32: ["TOO_MANY_CONNECTIONS", true, "The server has too many connections right now."],
  33: ["AUTH_TIMEOUT", true, "Logging in took too long."],
  34: ["IDLE_TIMEOUT", true, "The connection was idle for too long."],
  35: ["FRAME_TIMEOUT", true, "The connection stalled in the middle of a request."],
  36: ["SLOW_CONSUMER", true, "This page did not keep up with the server's messages."],
  37: ["FLOODING", true, "This page sent too much, too fast, and was disconnected for a while."],
  38: ["DEVICE_REVOKED", true, "This browser was signed out (its device was revoked). Log in again with your password."],
  40: ["STORAGE_ERROR", false, "The server could not store or load that; nothing was saved."],
  41: ["KICKED", true, "An operator disconnected you."],
  42: ["BANNED", true, "This account is banned."],
  43: ["MUTED", false, "You are muted: your message was not sent."],
  44: ["NOT_OPERATOR", false, "Only a server operator may do that."],
  45: ["NO_SUCH_MESSAGE", false, "There is no such message (it may have expired)."],
  46: ["NOT_GROUP_MODERATOR", false, "Only the group's owner or moderators may do that."],
  47: ["BAD_ADDRESS", false, "That is not an address or a block like 10.0.0.0/8."],
};

export function errorName(code) { return ERRORS[code] ? ERRORS[code][0] : `ERROR_${code}`; }

// Unknown codes are non-fatal unless the connection closes (PROTOCOL.md).
export function isFatal(code) { return ERRORS[code] ? ERRORS[code][1] : false; }

export function plainWords(err) {
  const known = ERRORS[err.code];
  let words = known ? known[2] : `The server refused that (error ${err.code}).`;
  if (err.retry_after_ms > 0) words += ` Try again in ${Math.ceil(err.retry_after_ms / 1000)} s.`;
  return words;
}
