import { maskSecretsOf, withoutKey } from "../../engine/mask_url.ts";

/**
 * `message` without `key`, nor anything shaped like an OpenAI key: OpenAI's
 * 401 quotes part of it ("Incorrect API key provided: sk-abc***xyz"); and
 * without the secrets of `baseUrl` (an Azure key in its query, a proxy's
 * password in its userinfo), which a server or proxy may repeat as well.
 */
export function redactKey(message: string, key: string, baseUrl?: string): string {
  message = withoutKey(message, key);
  if (baseUrl !== undefined) message = maskSecretsOf(message, baseUrl);
  return message.replace(/\bsk-[\w*.-]+/g, "sk-[redacted]");
}
