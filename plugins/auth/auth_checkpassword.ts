/**
 * auth/auth_checkpassword: checks AUTH PLAIN and LOGIN with a DJB checkpassword program
 * (vchkpw, checkpassword-pam, …): the program reads `user\0password\0timestamp\0` on fd 3 and
 * exits 0 (running its argument) for a good password.
 *
 * Hooks: auth-plain, auth-login.
 * Arguments: `checkpw PROGRAM true PROGRAM` (qpsmtpd's: the checker, then what it should run on
 * success, normally /bin/true); or the config file `smtpauth-checkpassword` holding
 * `PROGRAM TRUE-PROGRAM`. Any other word (but the engine's `timeout` and `loglevel`) stops
 * start-up.
 * Replies: OK on exit 0; DENY otherwise (535). The password never reaches a command line.
 * The program gets 15 seconds.
 */
import { spawn } from "node:child_process";
import { DECLINED, DENY, type HookContext, type Hooks, LOGERROR, LOGINFO, OK, parsePluginArgs, type Register } from "qpsmtpd";

interface Data {
  checkpw?: string;
  true?: string;
}

export const register: Register<Data> = function (_server, ...words) {
  const a = parsePluginArgs("auth/auth_checkpassword", words, { values: ["checkpw", "true"] });
  if (a.values.checkpw) this.data.checkpw = a.values.checkpw;
  if (a.values.true) this.data.true = a.values.true;
};

function programs(p: HookContext<Data>): [string, string] | undefined {
  const { checkpw, true: truePath } = p.data;
  if (checkpw && truePath) return [checkpw, truePath];
  const line = p.qp.config("smtpauth-checkpassword");
  const [a, b] = (line ?? "").split(/\s+/);
  return a && b ? [a, b] : undefined;
}

function check(prog: string, truePath: string, user: string, pass: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(prog, [truePath], { stdio: ["ignore", "ignore", "ignore", "pipe"] });
    const timer = setTimeout(() => child.kill("SIGKILL"), 15000);
    child.on("error", () => resolve(-1));
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
    const fd3 = child.stdio[3] as NodeJS.WritableStream | null;
    fd3?.on("error", () => undefined);
    const zero = Buffer.from([0]);
    fd3?.end(Buffer.concat([Buffer.from(user), zero, Buffer.from(pass), zero, Buffer.from(String(Math.floor(Date.now() / 1000))), zero]));
  });
}

export const hook_auth_plain: Hooks<Data>["auth-plain"] = async function (_txn, _mech, user, passClear) {
  const progs = programs(this);
  if (!progs) {
    this.log(LOGERROR, "no checkpassword program configured");
    return DECLINED;
  }
  if (passClear === undefined) return DECLINED;
  const code = await check(progs[0], progs[1], user, passClear);
  this.log(LOGINFO, `${progs[0]} exited ${code} for ${user}`);
  return code === 0 ? OK : DENY;
};
export const hook_auth_login = hook_auth_plain;
