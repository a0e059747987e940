// The official `openai` npm client against a zen server: lists the model, runs a chat
// completion whole and streamed (and a plain completion), and checks that greedy streamed text
// equals the whole answer.
//
//   npm install
//   ZEN_URL=http://127.0.0.1:8080/v1 [ZEN_API_KEY=KEY] node chat.mjs ["your message"]
//
// Exits with status 1 when an answer is missing or the streamed text differs.
import OpenAI from "openai";

const baseURL = process.env.ZEN_URL ?? "http://127.0.0.1:8080/v1";
// The client insists on a key; a server without --api-key ignores it.
const apiKey = process.env.ZEN_API_KEY ?? "no-key";
const message = process.argv[2] ?? "Tell me a story about a little dog.";
const maxTokens = Number(process.env.ZEN_MAX_TOKENS ?? 48);

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });

const models = await client.models.list();
const model = models.data[0].id;
console.log(`model: ${model}`);

const messages = [
  { role: "system", content: "You are a storyteller." },
  { role: "user", content: message },
];

// Whole answer.
const whole = await client.chat.completions.create({ model, messages, max_tokens: maxTokens, temperature: 0 });
const answer = whole.choices[0].message.content;
console.log(`chat (whole): ${JSON.stringify(answer)}`);
console.log(`  finish_reason=${whole.choices[0].finish_reason} usage=${JSON.stringify(whole.usage)}`);

// Streamed, token by token.
const stream = await client.chat.completions.create({
  model,
  messages,
  max_tokens: maxTokens,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = "";
let chunks = 0;
let usage = null;
process.stdout.write("chat (streamed): ");
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const delta = chunk.choices[0]?.delta?.content ?? "";
  if (delta) chunks++;
  streamed += delta;
  process.stdout.write(delta);
}
process.stdout.write("\n");
console.log(`  ${chunks} chunks, usage=${JSON.stringify(usage)}`);

// A plain completion.
const completion = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 24, temperature: 0 });
console.log(`completion: ${JSON.stringify(completion.choices[0].text)}`);

const same = streamed === answer;
console.log(`streamed text equals the whole answer: ${same ? "yes" : "NO"}`);
if (!same || !answer || chunks < 2 || !completion.choices[0].text) process.exit(1);
