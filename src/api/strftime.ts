/**
 * The strftime subset used in log and archive file names: %Y %m %d %H %M %S %j %a %b %T %F
 * %s %%, plus %i for the session id.
 * @module
 */
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function strftime(format: string, d: Date, session = ""): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  const start = new Date(d.getFullYear(), 0, 0);
  const yday = Math.floor((d.getTime() - start.getTime()) / 86400000);
  return format.replace(/%([YmdHMSjabTFsi%])/g, (_, c: string) => {
    switch (c) {
      case "Y":
        return String(d.getFullYear());
      case "m":
        return p(d.getMonth() + 1);
      case "d":
        return p(d.getDate());
      case "H":
        return p(d.getHours());
      case "M":
        return p(d.getMinutes());
      case "S":
        return p(d.getSeconds());
      case "j":
        return p(yday, 3);
      case "a":
        return DAYS[d.getDay()]!;
      case "b":
        return MONTHS[d.getMonth()]!;
      case "T":
        return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
      case "F":
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
      case "s":
        return String(Math.floor(d.getTime() / 1000));
      case "i":
        return session;
      default:
        return "%";
    }
  });
}
