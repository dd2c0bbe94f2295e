/**
 * domainkeys: DomainKeys (RFC 4870) is historic, obsoleted by DKIM (RFC 4871, now RFC 6376), and
 * no one signs with it any more. The name loads so that a qpsmtpd config that lists it still
 * starts; the plugin checks nothing and says so once, when it is loaded. Use `dkim`.
 *
 * Hooks: none. Arguments: qpsmtpd's (`reject`, ...) are accepted and ignored. Notes: none.
 * Failure policy: nothing can fail.
 */
import { type Init, LOGWARN } from "qpsmtpd";

export const init: Init = function () {
  this.log(LOGWARN, "DomainKeys (RFC 4870) is historic and is not checked; the dkim plugin verifies DKIM signatures");
};
