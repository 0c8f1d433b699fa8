// The agent-chat-ui scenario, driven by the real @langchain/langgraph-sdk Client against a
// running `durable-agent serve`, with the request shapes useStream sends: stream a run, answer
// the remember tool's interrupt with agent-chat-ui's decisions, then drop a resumable run's
// stream mid-way and join it again with Last-Event-ID. It checks what the client reads, not
// how the server stores it.
//
//   node scenario.mjs [API_URL [API_KEY]]      (or env DURABLE_AGENT_API_URL / _API_KEY)
//   node scenario.mjs --across-restart API_URL [API_KEY]
//
// Prints a JSON summary and exits 0, or prints "scenario failed: ..." and exits 1.
// --across-restart streams one run that waits (after_seconds) and prints {"run_created": id}
// on a line of its own: the caller then kills the server and starts it again on the same
// port and database, and the client's own reconnect (Location) must bring the whole run.

import { Client } from "@langchain/langgraph-sdk";

const ACROSS_RESTART = process.argv[2] === "--across-restart";
const [argUrl, argKey] = process.argv.slice(ACROSS_RESTART ? 3 : 2);
const API_URL = argUrl ?? process.env.DURABLE_AGENT_API_URL ?? "http://127.0.0.1:2024";
// null, not undefined: the SDK would otherwise pick up LANGGRAPH_API_KEY from the environment.
const API_KEY = argKey ?? process.env.DURABLE_AGENT_API_KEY ?? null;
const ASSISTANT = "agent";
const SCENARIO_MS = 90_000; // a hung stream fails the scenario rather than the CI job

// What useStream asks for when it renders messages and values with reconnectOnMount.
const STREAM_OPTIONS = {
  streamMode: ["values", "messages-tuple", "custom"],
  streamSubgraphs: true,
  streamResumable: true,
  onDisconnect: "continue",
};

class Mismatch extends Error {}

function check(condition, message, detail) {
  if (!condition) {
    const shown = detail === undefined ? "" : `\n  got: ${JSON.stringify(detail).slice(0, 2000)}`;
    throw new Mismatch(`${message}${shown}`);
  }
}

const mode = (part) => part.event.split("|")[0]; // "values|ns" is a subgraph's values
const rootValues = (parts) => parts.filter((p) => p.event === "values").map((p) => p.data);
const lastValues = (parts) => rootValues(parts).at(-1);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const brief = (parts) => parts.map((p) => `${p.id}:${p.event}`);

function textOf(message) {
  const content = message?.content;
  if (typeof content === "string") return content;
  return (content ?? []).map((block) => block?.text ?? "").join("");
}

/** Stream one run as useStream submits it; its parts and the run id from Content-Location. */
async function streamRun(client, threadId, payload, { stopAfter, controller } = {}) {
  let created;
  const parts = [];
  const stream = client.runs.stream(threadId, ASSISTANT, {
    ...STREAM_OPTIONS,
    ...payload,
    signal: controller?.signal,
    onRunCreated: (meta) => {
      created = meta;
      if (stopAfter === 0) controller.abort(); // dropped before the first event
    },
  });
  try {
    for await (const part of stream) {
      parts.push(part);
      if (stopAfter !== undefined && parts.length >= stopAfter) {
        controller.abort(); // what useStream's stop() and a closed tab do to the fetch
      }
    }
  } catch (error) {
    if (!controller?.signal.aborted) throw error;
  }
  check(created?.run_id, "onRunCreated got no run id (Content-Location header)", created);
  return { runId: created.run_id, parts };
}

/** A run's stream joined again, as useStream's reconnectOnMount does. */
async function joinRun(client, threadId, runId, options) {
  const parts = [];
  for await (const part of client.runs.joinStream(threadId, runId, options)) parts.push(part);
  return parts;
}

function checkRunParts(parts, runId, label) {
  check(parts.length > 0, `${label}: the stream yielded nothing`);
  check(parts[0].event === "metadata", `${label}: the first event is not metadata`, brief(parts));
  check(parts[0].data?.run_id === runId, `${label}: metadata run_id is not the created run's`,
    parts[0].data);
  const errors = parts.filter((p) => p.event === "error");
  check(errors.length === 0, `${label}: the stream carried an error event`, errors);
  check(parts.at(-1).event === "end", `${label}: the stream did not end with "end"`, brief(parts));
  // "end" may come without an id of its own: SSE ids are sticky, so it shows the last one.
  const ids = parts.slice(0, -1).map((p) => Number(p.id));
  check(ids.every((id, i) => Number.isInteger(id) && (i === 0 || id > ids[i - 1])),
    `${label}: a resumable run's events must carry increasing ids`, brief(parts));
}

function checkMessages(parts, label) {
  const messages = parts.filter((p) => mode(p) === "messages");
  check(messages.length > 0, `${label}: no messages events for stream_mode messages-tuple`,
    brief(parts));
  for (const { data } of messages) {
    check(Array.isArray(data) && data.length === 2, `${label}: messages data is not [chunk, metadata]`,
      data);
    const [chunk] = data;
    // useStream calls chunk.type.endsWith(...) and ignores chunks without an id.
    check(typeof chunk?.type === "string", `${label}: a message chunk has no type`, chunk);
    check(typeof chunk?.id === "string" && chunk.id, `${label}: a message chunk has no id`, chunk);
  }
  return messages.length;
}

async function askArithmetic(client, threadId) {
  const input = { messages: [{ role: "user", content: "what is 12*7?" }] };
  const { runId, parts } = await streamRun(client, threadId, { input });
  checkRunParts(parts, runId, "12*7");
  const chunks = checkMessages(parts, "12*7");
  const answer = textOf(lastValues(parts)?.messages?.at(-1));
  check(answer.includes("84"), "12*7: the final values' last message does not say 84", answer);
  return { run_id: runId, events: parts.length, message_chunks: chunks, answer };
}

async function rememberTea(client, threadId) {
  const input = { messages: [{ role: "user", content: "remember that I like tea" }] };
  const { runId, parts } = await streamRun(client, threadId, { input });
  checkRunParts(parts, runId, "remember");
  const interrupts = rootValues(parts).flatMap((v) => v?.__interrupt__ ?? []);
  check(interrupts.length > 0, "remember: no values event carried __interrupt__",
    rootValues(parts));
  const asked = interrupts.at(-1);
  check(typeof asked.id === "string", "remember: the interrupt has no id", asked);
  check(asked.value?.action_requests?.[0]?.name === "remember",
    "remember: the interrupt has no action_requests for remember", asked);
  check(asked.value?.review_configs?.[0]?.allowed_decisions?.includes("approve"),
    "remember: the interrupt's review_configs do not allow approve", asked);
  const state = await client.threads.getState(threadId);
  check(state.next?.length > 0 && state.tasks?.some((t) => t.interrupts?.length),
    "remember: the thread's state shows no pending interrupt", state);
  return { run_id: runId, events: parts.length, interrupt_id: asked.id };
}

async function approveTea(client, threadId) {
  // agent-chat-ui resumes with input: null beside the command (useStream sends null as is).
  const payload = { input: null, command: { resume: { decisions: [{ type: "approve" }] } } };
  const { runId, parts } = await streamRun(client, threadId, payload);
  checkRunParts(parts, runId, "approve");
  const final = lastValues(parts);
  check(!final?.__interrupt__?.length, "approve: the run still ends interrupted", final);
  const { items } = await client.store.searchItems(["facts"]);
  const facts = items.map((item) => item.value?.fact);
  check(facts.some((fact) => String(fact).includes("tea")), "approve: no fact about tea stored",
    items);
  const state = await client.threads.getState(threadId);
  check(!state.next?.length, "approve: the thread still has a next step", state.next);
  return { run_id: runId, events: parts.length, facts };
}

async function reconnect(client, threadId) {
  const input = { messages: [{ role: "user", content: "what is 12*7?" }] };
  const controller = new AbortController();
  const { runId, parts: seen } = await streamRun(client, threadId, { input },
    { stopAfter: 2, controller });
  check(seen.length === 2, "reconnect: the dropped stream did not stop where it was aborted",
    brief(seen));

  const full = await joinRun(client, threadId, runId, { lastEventId: "-1" });
  checkRunParts(full, runId, "join -1");
  checkMessages(full, "join -1");
  check(same(full.slice(0, seen.length), seen),
    "join -1: the replay does not start with the events seen before the drop",
    { seen: brief(seen), replay: brief(full) });
  check(textOf(lastValues(full)?.messages?.at(-1)).includes("84"),
    "join -1: the replayed final values do not say 84", lastValues(full));

  // Every suffix point a client could have stopped at: exactly the later events come back.
  const cut = Math.floor(full.length / 2);
  const later = await joinRun(client, threadId, runId, { lastEventId: full[cut].id });
  check(same(later, full.slice(cut + 1)),
    `join after id ${full[cut].id}: not exactly the later events`,
    { expected: brief(full.slice(cut + 1)), got: brief(later) });

  // useStream's own rejoin also names the checkpoint it had; replaying from the start or only
  // after that checkpoint are both allowed, so the join must give a tail of the run, ending in end.
  const head = await client.threads.getState(threadId);
  const withCheckpoint = await joinRun(client, threadId, runId,
    { lastEventId: "-1", checkpointId: head.checkpoint?.checkpoint_id });
  const shown = (parts) => parts.map(({ event, data }) => ({ event, data }));
  const tail = full.slice(-withCheckpoint.length);
  check(withCheckpoint.length > 0 && same(shown(withCheckpoint), shown(tail)),
    "join -1 with checkpoint_id: not a tail of the run's events",
    { full: brief(full), got: brief(withCheckpoint) });

  const run = await client.runs.get(threadId, runId);
  check(run.status === "success", "reconnect: the run did not finish after the drop", run);
  return { run_id: runId, seen_before_drop: seen.length, replayed: full.length,
    joined_after: { id: full[cut].id, events: later.length } };
}

/** A tab closed right after submitting: the run, still pending (after_seconds), must go on. */
async function dropWhilePending(client, threadId) {
  const input = { messages: [{ role: "user", content: "what is 12*7?" }] };
  const controller = new AbortController();
  const { runId, parts: seen } = await streamRun(client, threadId, { input, afterSeconds: 1 },
    { stopAfter: 0, controller });
  check(seen.length === 0, "pending drop: events arrived after the abort", brief(seen));
  const full = await joinRun(client, threadId, runId, { lastEventId: "-1" });
  checkRunParts(full, runId, "pending drop, join -1");
  check(textOf(lastValues(full)?.messages?.at(-1)).includes("84"),
    "pending drop: the joined run's final values do not say 84", lastValues(full));
  return { run_id: runId, replayed: full.length };
}

/** What agent-chat-ui reads around a chat: its thread list by graph, useStream's history. */
async function threadViews(client, threadId) {
  const listed = await client.threads.search({ metadata: { graph_id: ASSISTANT }, limit: 100 });
  check(listed.some((t) => t.thread_id === threadId),
    "threads.search by graph_id does not list the thread the runs used", listed);
  const history = await client.threads.getHistory(threadId, { limit: 10 });
  check(history.length > 0 && history.every((s) => s.checkpoint?.checkpoint_id),
    "threads.getHistory: no states with checkpoint ids", history);
  // LangGraph Studio's and agent-chat-ui's forms read these; a schema may be null.
  const schemas = await client.assistants.getSchemas(ASSISTANT);
  check(schemas?.graph_id === ASSISTANT, "assistants.getSchemas: not the agent's schemas", schemas);
  return { listed: listed.length, history: history.length,
    schemas: Object.keys(schemas).filter((k) => schemas[k] !== null) };
}

/** One run's stream, kept by the SDK's reconnect across a server killed and started again. */
async function acrossRestart(client) {
  const threadId = (await client.threads.create()).thread_id;
  const input = { messages: [{ role: "user", content: "what is 12*7?" }] };
  let runId;
  const parts = [];
  const stream = client.runs.stream(threadId, ASSISTANT, {
    ...STREAM_OPTIONS,
    input,
    afterSeconds: 2, // still pending when the server is killed
    onRunCreated: (meta) => {
      runId = meta.run_id;
      console.log(JSON.stringify({ run_created: runId }));
    },
  });
  for await (const part of stream) parts.push(part);
  checkRunParts(parts, runId, "across a restart");
  checkMessages(parts, "across a restart");
  check(textOf(lastValues(parts)?.messages?.at(-1)).includes("84"),
    "across a restart: the final values do not say 84", lastValues(parts));
  const run = await client.runs.get(threadId, runId);
  check(run.status === "success", "across a restart: the run did not succeed", run);
  return { thread_id: threadId, run_id: runId, events: parts.length };
}

async function main() {
  const client = new Client({ apiUrl: API_URL, apiKey: API_KEY });
  if (ACROSS_RESTART) return { api_url: API_URL, across_restart: await acrossRestart(client) };
  const thread = await client.threads.create();
  check(thread?.thread_id, "threads.create returned no thread_id", thread);
  const threadId = thread.thread_id;
  const summary = { api_url: API_URL, thread_id: threadId };
  summary.arithmetic = await askArithmetic(client, threadId);
  summary.interrupt = await rememberTea(client, threadId);
  summary.resume = await approveTea(client, threadId);
  summary.reconnect = await reconnect(client, threadId);
  summary.pending_drop = await dropWhilePending(client, threadId);
  summary.thread_views = await threadViews(client, threadId);
  return summary;
}

const timer = setTimeout(() => {
  console.error(`scenario failed: no result after ${SCENARIO_MS / 1000} s`);
  process.exit(1);
}, SCENARIO_MS);
timer.unref();

try {
  console.log(JSON.stringify(await main(), null, 2));
} catch (error) {
  const kind = error instanceof Mismatch ? "" : `${error?.name ?? "Error"}: `;
  console.error(`scenario failed: ${kind}${error?.message ?? error}`);
  if (!(error instanceof Mismatch) && error?.stack) console.error(error.stack);
  process.exit(1);
}
