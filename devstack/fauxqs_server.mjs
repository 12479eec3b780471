// Starts the fauxqs SQS emulator bound to 127.0.0.1 on the given port (0 = any free port)
// and prints the port it got as one JSON line. fauxqs's own CLI binds 0.0.0.0 and has no
// host option, so we build its app ourselves and choose the listen address.
//
// fauxqs 1.x keeps everything in memory (its SQLite persistence needs fauxqs 2, which needs
// Node 22.5; we run Node 20). With a journal path (argv[3]) every message put on a queue and every
// delete or purge is appended to that file as it happens, so queued mail (and the DLQ) outlives a
// kill of this process and a restart of the stack: when a queue of the same name is created
// again, the messages the journal holds for it are put back (receive counts as at their last put).
// The journal is compacted to the live messages at start and when it grows. SQS has no
// "age of the oldest message" attribute (CloudWatch has the metric), and fauxqs's GetQueueAttributes
// returns counts only, so we add one read-only route that computes it from the store, as
// CloudWatch's ApproximateAgeOfOldestMessage does on AWS: GET /_swordfish/queues/<name>/age.
import fs from "node:fs";
import { buildApp } from "fauxqs";
// Not exported by the package: imported by path so the route can read the same store (read only)
// and the journal can follow what the queues do.
import { SqsQueue, SqsStore } from "../node_modules/fauxqs/dist/sqs/sqsStore.js";

const port = parseInt(process.argv[2] ?? "0", 10);
const journalPath = process.argv[3] || null;
const sqsStore = new SqsStore();

if (journalPath) {
  const live = new Map();  // messageId -> {q, msg}: what the journal says is on a queue now
  try {
    for (const line of fs.readFileSync(journalPath, "utf8").split("\n")) {
      if (!line) continue;
      let op;
      try { op = JSON.parse(line); } catch { continue; }  // a line cut short by a kill: never acknowledged
      if (op.op === "put") live.set(op.msg.messageId, { q: op.q, msg: op.msg });
      else if (op.op === "del") live.delete(op.id);
      else if (op.op === "purge") for (const [id, entry] of live) if (entry.q === op.q) live.delete(id);
    }
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  let fd = null;
  let ops = 0;
  const compact = () => {
    const tmp = `${journalPath}.tmp`;
    fs.writeFileSync(tmp, [...live.values()].map((e) => JSON.stringify({ op: "put", q: e.q, msg: e.msg }) + "\n").join(""));
    fs.renameSync(tmp, journalPath);
    if (fd !== null) fs.closeSync(fd);
    fd = fs.openSync(journalPath, "a");
    ops = 0;
  };
  compact();
  const append = (op) => {
    fs.writeSync(fd, JSON.stringify(op) + "\n");  // written before the call returns: survives a kill -9
    if (++ops > 20000 && ops > 4 * live.size) compact();  // bounded: about 10,000 bodies appended between compactions
  };
  let restoring = false;
  const enqueue = SqsQueue.prototype.enqueue;
  SqsQueue.prototype.enqueue = function (msg) {
    if (!restoring) {
      live.set(msg.messageId, { q: this.name, msg });
      append({ op: "put", q: this.name, msg });
    }
    return enqueue.call(this, msg);
  };
  const deleteMessage = SqsQueue.prototype.deleteMessage;
  SqsQueue.prototype.deleteMessage = function (receiptHandle) {
    const entry = this.inflightMessages.get(receiptHandle);
    const deleted = deleteMessage.call(this, receiptHandle);
    if (deleted && entry && live.get(entry.message.messageId)?.q === this.name) {
      live.delete(entry.message.messageId);
      append({ op: "del", q: this.name, id: entry.message.messageId });
    }
    return deleted;
  };
  const purge = SqsQueue.prototype.purge;
  SqsQueue.prototype.purge = function () {
    for (const [id, entry] of live) if (entry.q === this.name) live.delete(id);
    append({ op: "purge", q: this.name });
    return purge.call(this);
  };
  const createQueue = sqsStore.createQueue.bind(sqsStore);
  sqsStore.createQueue = (name, ...rest) => {
    const queue = createQueue(name, ...rest);
    let restored = 0;
    restoring = true;
    try {
      for (const entry of live.values()) {
        if (entry.q !== name) continue;
        entry.msg.delayUntil = undefined;
        queue.enqueue(entry.msg);
        restored += 1;
      }
    } finally {
      restoring = false;
    }
    if (restored) console.log(JSON.stringify({ restored, queue: name, journal: journalPath }));
    return queue;
  };
}
const app = buildApp({ logger: false, stores: { sqsStore } });
app.get("/_swordfish/queues/:queueName/age", async (request, reply) => {
  const queue = sqsStore.getQueueByName(request.params.queueName);
  if (!queue) {
    reply.status(404);
    return { error: `queue '${request.params.queueName}' not found` };
  }
  const now = Date.now();
  let oldest = null;
  let count = 0;
  const consider = (message) => {
    count += 1;
    if (oldest === null || message.sentTimestamp < oldest) oldest = message.sentTimestamp;
  };
  queue.messages.forEach(consider);  // ready
  queue.delayedMessages.forEach(consider);
  for (const entry of queue.inflightMessages.values()) consider(entry.message);
  return { queue: queue.name, messages: count, oldestAgeSeconds: oldest === null ? 0 : (now - oldest) / 1000 };
});
// Which submissions a queue holds (tenant_id, message_id of each body that parses), without
// receiving them: the stack's start re-enqueues archived submissions that are on no queue.
app.get("/_swordfish/queues/:queueName/submissions", async (request, reply) => {
  const queue = sqsStore.getQueueByName(request.params.queueName);
  if (!queue) {
    reply.status(404);
    return { error: `queue '${request.params.queueName}' not found` };
  }
  const found = [];
  const consider = (message) => {
    try {
      const body = JSON.parse(message.body);
      if (body && typeof body === "object") found.push([body.tenant_id ?? null, body.message_id ?? null]);
    } catch { /* not a submission */ }
  };
  queue.messages.forEach(consider);
  queue.delayedMessages.forEach(consider);
  for (const entry of queue.inflightMessages.values()) consider(entry.message);
  return { queue: queue.name, submissions: found };
});
const address = await app.listen({ port, host: "127.0.0.1" });
console.log(JSON.stringify({ listening: address, port: new URL(address).port }));
const stop = async () => { await app.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
