/**
 * domainkeys: DomainKeys (RFC 4870) is historic, obsoleted by DKIM (RFC 4871, now RFC 6376), and
 * no one signs with it any more. The name loads so that a qpsmtpd config that lists it still
 * starts; the plugin checks nothing and says so once, when it is loaded. Use `dkim`.
 *
 * Hooks: none. Arguments: qpsmtpd's (`reject`, `reject_type`, `warn_only`) are accepted and have
 * no effect (the load-time line names them); any other word (but the engine's `timeout` and
 * `loglevel`) stops start-up. Notes: none.
 * Failure policy: nothing can fail.
 */
import { type Init, LOGWARN, parsePluginArgs } from "qpsmtpd";

export const init: Init = function (_server, ...words) {
  const a = parsePluginArgs("domainkeys", words, { values: ["reject", "reject_type", "warn_only"] });
  const ignored = (["reject", "reject_type", "warn_only"] as const).filter((k) => a.values[k] !== undefined);
  this.log(
    LOGWARN,
    `DomainKeys (RFC 4870) is historic and is not checked; the dkim plugin verifies DKIM signatures${
      ignored.length ? ` (${ignored.join(", ")}: no effect)` : ""
    }`,
  );
};
