/**
 * Writes `slow.ts` into `dir`: a step module taking batches of 10 that waits
 * `first` ms on its first batch and `rest` ms on each after, so a drain
 * holding one of its batches outlasts a test's gap whatever the machine.
 */
export async function writeSlowStep(
  dir: string,
  ms: { first: number; rest: number },
): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/slow.ts`,
    'import { z } from "zod";\n' +
      "let n = 0;\n" +
      "export default { summary: 'waits', schema: z.strictObject({}), create: () => ({\n" +
      "  window: { size: 10, maxWait: 10 },\n" +
      "  async handle(batch: { id: string }[], out: { emit(i: unknown): void }) {\n" +
      `    await new Promise((r) => setTimeout(r, n++ === 0 ? ${ms.first} : ${ms.rest}));\n` +
      "    for (const item of batch) out.emit(item);\n" +
      "  },\n}) };\n",
  );
}
