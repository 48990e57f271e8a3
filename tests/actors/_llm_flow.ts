/** The flow and items the llm stage's tests share. */

export const KEY = "sk-llm-test-7d1e2b";

export function flowYaml(url: string, extra = ""): string {
  return `
name: llm-test
sources: { inbox: { kind: memory } }
pipeline:
  - llm:
      baseUrl: ${url}
      model: gpt-test
      apiKey: \${KEY}
      prompt: Count the words and give the topic.
      input: "{title}"
      schema:
        type: object
        properties:
          words: { type: integer }
          topic: { type: string, enum: [tech, other] }
        required: [words, topic]
        additionalProperties: false
      into: facts
      batch: { size: 10, maxWait: 10ms }
${extra}
  - publish: [ { collect: { name: out } } ]
`;
}

export const items = (n: number, title = (i: number) => `story number ${i}`) =>
  Array.from({ length: n }, (_, i) => ({ title: title(i), url: `https://example.com/${i}` }));

export const wordsOf = (input: string) => ({ words: input.split(" ").length, topic: "tech" });
