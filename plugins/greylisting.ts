/**
 * greylisting: defers mail from a new (address, sender, recipient) triplet; a client that
 * retries after `black_timeout` but within `grey_timeout` is let through and remembered for
 * `white_timeout`.
 *
 * Hooks: mail (when only the address is used), rcpt (when sender or recipient are), data (with
 * `deny_late 1`, the deferral waits until DATA so every recipient is recorded first).
 * Arguments (qpsmtpd's names and defaults): `remote_ip 1`, `sender 0`, `recipient 0`,
 * `black_timeout 3000` (50 min), `grey_timeout 12000` (3 h 20 min), `white_timeout 3110400`
 * (36 days), `deny_late 0`, `reject 1` (`reject 0` only logs and notes), `db_dir DIR`,
 * `loglevel`.
 * Config files: `denysoft_greylist` (the reply text), `db_dir`.
 * Exempt: relay clients, whitelisted hosts, senders and recipients.
 * Notes: transaction `greylist` (`new`, `early`, `white`, `pass`).
 * Replies: `450 This mail is temporarily denied`. State lives in the SQLite store.
 */
import { type Address, DECLINED, DENYSOFT, type HookContext, type Hooks, LOGINFO, type Result, type Transaction } from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The verdict: new, early, white or pass. */
    greylist: "new" | "early" | "white" | "pass";
    /** With `deny_late 1`: the deferral waits for DATA. */
    greylist_deferred: boolean;
  }
}

function num(p: HookContext, key: string, fallback: number): number {
  const v = p.options[key];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback;
}

function perRecipient(p: HookContext): boolean {
  return p.options["sender"] === "1" || p.options["recipient"] === "1";
}

/** Looks a triplet up and updates it; returns the verdict. */
async function verdict(p: HookContext, txn: Transaction, rcpt?: Address): Promise<"new" | "early" | "white" | "pass"> {
  const parts = ["grey"];
  if (p.options["remote_ip"] !== "0") parts.push(p.connection.remote_ip);
  if (p.options["sender"] === "1") parts.push(txn.sender()?.address().toLowerCase() ?? "");
  if (p.options["recipient"] === "1" && rcpt) parts.push(rcpt.address().toLowerCase());
  const key = parts.join("|");
  const store = p.store();
  const now = p.server.now();
  const raw = await store.get(key);
  const rec = raw ? (JSON.parse(raw) as { first: number; white?: boolean }) : undefined;
  const white = num(p, "white_timeout", 3110400);
  if (!rec) {
    await store.set(key, JSON.stringify({ first: now }), num(p, "grey_timeout", 12000));
    return "new";
  }
  if (rec.white) {
    await store.set(key, raw!, white);
    return "white";
  }
  if (now - rec.first < num(p, "black_timeout", 3000) * 1000) return "early";
  await store.set(key, JSON.stringify({ first: rec.first, white: true }), white);
  return "pass";
}

function exempt(p: HookContext, txn: Transaction): boolean {
  return p.is_immune() || !!txn.notes("whitelistrcpt");
}

async function decide(p: HookContext, txn: Transaction, rcpt?: Address): Promise<Result> {
  if (exempt(p, txn)) return DECLINED;
  const v = await verdict(p, txn, rcpt);
  txn.notes("greylist", v);
  p.log(LOGINFO, v);
  if (v === "white" || v === "pass") return DECLINED;
  if (p.options["reject"] === "0") return DECLINED;
  if (p.options["deny_late"] === "1") {
    txn.notes("greylist_deferred", true);
    return DECLINED;
  }
  return [DENYSOFT, p.qp.config("denysoft_greylist") ?? "This mail is temporarily denied"];
}

export const hook_mail: Hooks["mail"] = function (txn) {
  return perRecipient(this) ? DECLINED : decide(this, txn);
};

export const hook_rcpt: Hooks["rcpt"] = function (txn, rcpt) {
  return perRecipient(this) ? decide(this, txn, rcpt) : DECLINED;
};

export const hook_data: Hooks["data"] = function (txn) {
  if (!txn.notes("greylist_deferred")) return DECLINED;
  return [DENYSOFT, this.qp.config("denysoft_greylist") ?? "This mail is temporarily denied"];
};
