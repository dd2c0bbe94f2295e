/**
 * qpsmtpd's return codes and log levels, with qpsmtpd's names and numbers.
 * @module
 */

// `as const` literal types do not widen to number, so `async () => DECLINED` is a valid hook.
export const OK = 900 as const;
export const DENY = 901 as const;
export const DENYSOFT = 902 as const;
export const DENY_DISCONNECT = 903 as const;
/** Deprecated alias of DENY_DISCONNECT, kept for old plugins. */
export const DENYHARD = 903 as const;
export const DENYSOFT_DISCONNECT = 904 as const;
export const DECLINED = 909 as const;
export const DONE = 910 as const;

export type ReturnCode =
  | typeof OK
  | typeof DENY
  | typeof DENYSOFT
  | typeof DENY_DISCONNECT
  | typeof DENYSOFT_DISCONNECT
  | typeof DECLINED
  | typeof DONE;

const CODE_NAMES: ReadonlyMap<number, string> = new Map([
  [OK, "OK"],
  [DENY, "DENY"],
  [DENYSOFT, "DENYSOFT"],
  [DENY_DISCONNECT, "DENY_DISCONNECT"],
  [DENYSOFT_DISCONNECT, "DENYSOFT_DISCONNECT"],
  [DECLINED, "DECLINED"],
  [DONE, "DONE"],
]);
const CODE_VALUES: ReadonlyMap<string, ReturnCode> = new Map<string, ReturnCode>(
  [...CODE_NAMES].map(([v, n]) => [n, v as ReturnCode] as const).concat([["DENYHARD", DENYHARD]]),
);

export function isReturnCode(x: unknown): x is ReturnCode {
  return typeof x === "number" && CODE_NAMES.has(x);
}

/** Maps a code to its name or a name to its code (exact match, unlike Perl's loose regex). */
export function return_code(x: number): string | undefined;
export function return_code(x: string): ReturnCode | undefined;
export function return_code(x: number | string): string | ReturnCode | undefined {
  return typeof x === "number" ? CODE_NAMES.get(x) : CODE_VALUES.get(x.toUpperCase());
}

export const LOGDEBUG = 7;
export const LOGINFO = 6;
export const LOGNOTICE = 5;
export const LOGWARN = 4;
export const LOGERROR = 3;
export const LOGCRIT = 2;
export const LOGALERT = 1;
export const LOGEMERG = 0;
export const LOGRADAR = 0;

const LEVEL_NAMES = ["LOGEMERG", "LOGALERT", "LOGCRIT", "LOGERROR", "LOGWARN", "LOGNOTICE", "LOGINFO", "LOGDEBUG"];

/** Maps a level to its name, or a name (with or without the LOG prefix) to its number. */
export function log_level(x: number): string | undefined;
export function log_level(x: string): number | undefined;
export function log_level(x: number | string): string | number | undefined {
  if (typeof x === "number") return LEVEL_NAMES[x];
  const name = x.toUpperCase();
  if (name === "LOGRADAR" || name === "RADAR") return LOGRADAR;
  const i = LEVEL_NAMES.indexOf(name.startsWith("LOG") ? name : `LOG${name}`);
  return i < 0 ? undefined : i;
}

/** Parses a level argument given as a number or a name; undefined when it is neither. */
export function parseLogLevel(x: string): number | undefined {
  if (/^[0-7]$/.test(x)) return Number(x);
  return log_level(x);
}
