/** The result of filling `${VAR}` references in one string. */
export type Substitution =
  | { ok: true; value: string; changed: boolean }
  | {
    ok: false;
    /** Index in the input string of the `${` at fault. */
    index: number;
    /** The variable that is not set, when that is the fault. */
    variable?: string;
    message: string;
  };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Fills `${VAR}` and `${VAR:-default}` from `env`; `$${` stands for a literal
 * `${`. As in a shell, `:-` uses the default when the variable is unset or
 * empty. Runs on one parsed YAML string at a time, never on the raw file, so
 * a value cannot change the YAML around it and positions stay true.
 */
export function substituteEnv(
  text: string,
  env: Record<string, string | undefined>,
): Substitution {
  if (!text.includes("${")) return { ok: true, value: text, changed: false };
  let out = "";
  let i = 0;
  while (i < text.length) {
    const at = text.indexOf("${", i);
    if (at < 0) break;
    if (at > 0 && text[at - 1] === "$") {
      out += text.slice(i, at - 1) + "${";
      i = at + 2;
      continue;
    }
    out += text.slice(i, at);
    const close = text.indexOf("}", at + 2);
    if (close < 0) {
      return {
        ok: false,
        index: at,
        message: `unclosed "\${" in ${
          JSON.stringify(text)
        }; write \${NAME}, or $\${ for a literal \${`,
      };
    }
    const body = text.slice(at + 2, close);
    const sep = body.indexOf(":-");
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      return {
        ok: false,
        index: at,
        message:
          `"\${${body}}" is not a variable reference; write \${NAME} or \${NAME:-default}, ` +
          `or $\${ for a literal \${`,
      };
    }
    const value = env[name];
    if (sep >= 0 && (value === undefined || value === "")) out += body.slice(sep + 2);
    else if (value !== undefined) out += value;
    else {
      return {
        ok: false,
        index: at,
        variable: name,
        message: `environment variable ${name} is not set`,
      };
    }
    i = close + 1;
  }
  return { ok: true, value: out + text.slice(i), changed: true };
}
