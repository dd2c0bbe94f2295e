/**
 * The MAIL and RCPT parameters the engine advertises, checked and turned into typed options:
 * SIZE (RFC 1870), BODY (RFC 6152, 3030), SMTPUTF8 (RFC 6531), REQUIRETLS (RFC 8689), AUTH
 * (RFC 4954), RET, ENVID, NOTIFY and ORCPT (RFC 3461). A parameter that was not advertised is
 * 555; a bad value is 501 with the parameter named, as Postfix answers.
 * @module
 */
import { type BodyType, type DsnNotify, type MailOptions, type RcptDsn, xtextDecode } from "../api/esmtp.ts";
import type { Params } from "../api/hooks.ts";
import { REPLIES, type Reply } from "./replies.ts";

/** RFC 3461 4.4: ENVID at most 100 characters; ORCPT at most 500. */
const MAX_ENVID = 100;
const MAX_ORCPT = 500;

export interface MailContext {
  /** `databytes`, 0 = no limit. */
  readonly databytes: number;
  /** The connection is encrypted (REQUIRETLS is offered only then). */
  readonly tls: boolean;
}

/** Checks MAIL's parameters; a Reply is the refusal to send. */
export function mailOptions(params: Params, ctx: MailContext): MailOptions | Reply {
  let size: number | undefined;
  let body: BodyType | undefined;
  let smtputf8 = false;
  let requiretls = false;
  let ret: "FULL" | "HDRS" | undefined;
  let envid: string | undefined;
  for (const key in params) {
    const value = params[key];
    switch (key) {
      case "size":
        if (value === undefined || !/^\d{1,20}$/.test(value)) return REPLIES.badParameter("SIZE");
        size = Number(value);
        if (ctx.databytes > 0 && size > ctx.databytes) return REPLIES.sizeExceeded;
        break;
      case "body": {
        const v = value?.toUpperCase();
        if (v !== "7BIT" && v !== "8BITMIME" && v !== "BINARYMIME") return REPLIES.badParameter("BODY");
        body = v;
        break;
      }
      case "smtputf8":
        if (value !== undefined) return REPLIES.badParameter("SMTPUTF8");
        smtputf8 = true;
        break;
      case "requiretls":
        if (value !== undefined) return REPLIES.badParameter("REQUIRETLS");
        if (!ctx.tls) return REPLIES.requireTlsWithoutTls;
        requiretls = true;
        break;
      case "ret": {
        const v = value?.toUpperCase();
        if (v !== "FULL" && v !== "HDRS") return REPLIES.badParameter("RET");
        ret = v;
        break;
      }
      case "envid": {
        const v = value === undefined ? undefined : xtextDecode(value);
        if (v === undefined || v.length === 0 || v.length > MAX_ENVID || !/^[\x20-\x7e]+$/.test(v)) return REPLIES.badParameter("ENVID");
        envid = v;
        break;
      }
      case "auth":
        // RFC 4954 5: the submitter's identity, xtext; a relay may ignore it.
        if (value === undefined || (value !== "<>" && xtextDecode(value) === undefined)) return REPLIES.badParameter("AUTH");
        break;
      default:
        return REPLIES.unsupportedParameter(key);
    }
  }
  return {
    smtputf8,
    requiretls,
    ...(size !== undefined ? { size } : {}),
    ...(body ? { body } : {}),
    ...(ret ? { ret } : {}),
    ...(envid !== undefined ? { envid } : {}),
  };
}

const NOTIFY = new Set<string>(["NEVER", "SUCCESS", "FAILURE", "DELAY"]);

/** Checks RCPT's parameters; undefined when it has none, a Reply when one is refused. */
export function rcptDsn(params: Params): RcptDsn | undefined | Reply {
  let notify: DsnNotify[] | undefined;
  let orcpt: { type: string; address: string } | undefined;
  for (const key in params) {
    const value = params[key];
    switch (key) {
      case "notify": {
        const list = (value ?? "").toUpperCase().split(",");
        const unique = new Set(list);
        if (!value || list.some((v) => !NOTIFY.has(v)) || unique.size !== list.length || (unique.has("NEVER") && list.length > 1)) {
          return REPLIES.badParameter("NOTIFY");
        }
        notify = list as DsnNotify[];
        break;
      }
      case "orcpt": {
        const m = value === undefined ? null : /^([A-Za-z0-9][A-Za-z0-9-]*);(.+)$/.exec(value);
        const address = m ? xtextDecode(m[2]!) : undefined;
        if (!m || address === undefined || value!.length > MAX_ORCPT || !/^[\x20-\x7e]+$/.test(address)) {
          return REPLIES.badParameter("ORCPT");
        }
        orcpt = { type: m[1]!.toLowerCase(), address };
        break;
      }
      default:
        return REPLIES.unsupportedParameter(key);
    }
  }
  if (!notify && !orcpt) return undefined;
  return { ...(notify ? { notify } : {}), ...(orcpt ? { orcpt } : {}) };
}

/** Whether a check returned a refusal. */
export function isReply(x: unknown): x is Reply {
  return typeof x === "object" && x !== null && "code" in x && "status" in x;
}
