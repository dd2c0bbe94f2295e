// Private spamd and clamd for a `make bench` scanner profile (the same instances the tests start):
// prints `SPAMD_PORT CLAMD_SOCKET` on one line once both answer, and stops them on SIGTERM/SIGINT.
import { availableParallelism } from "node:os";
import { startClamd } from "../tests/helpers/clamd.ts";
import { startSpamd } from "../tests/helpers/spamd.ts";

const [spamd, clamd] = await Promise.all([startSpamd({ children: Math.max(2, availableParallelism()) }), startClamd()]);
process.stdout.write(`${spamd.port} ${clamd.socket}\n`);
const stop = async () => {
  await Promise.all([spamd.stop(), clamd.stop()]);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
