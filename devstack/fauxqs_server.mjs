// Starts the fauxqs SQS emulator bound to 127.0.0.1 on the given port (0 = any free port)
// and prints the port it got as one JSON line. fauxqs's own CLI binds 0.0.0.0 and has no
// host option, so we build its app ourselves and choose the listen address.
//
// fauxqs keeps everything in memory: queues and their messages are gone when this process stops
// (the embedded stack re-creates the queues; messages still queued are lost). SQS has no
// "age of the oldest message" attribute (CloudWatch has the metric), and fauxqs's GetQueueAttributes
// returns counts only, so we add one read-only route that computes it from the store, as
// CloudWatch's ApproximateAgeOfOldestMessage does on AWS: GET /_swordfish/queues/<name>/age.
import { buildApp } from "fauxqs";
// Not exported by the package: imported by path so the route can read the same store (read only).
import { SqsStore } from "../node_modules/fauxqs/dist/sqs/sqsStore.js";

const port = parseInt(process.argv[2] ?? "0", 10);
const sqsStore = new SqsStore();
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
const address = await app.listen({ port, host: "127.0.0.1" });
console.log(JSON.stringify({ listening: address, port: new URL(address).port }));
const stop = async () => { await app.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
