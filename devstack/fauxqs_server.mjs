// Starts the fauxqs SQS emulator bound to 127.0.0.1 on the given port (0 = any free port)
// and prints the port it got as one JSON line. fauxqs's own CLI binds 0.0.0.0 and has no
// host option, so we build its app ourselves and choose the listen address.
import { buildApp } from "fauxqs";

const port = parseInt(process.argv[2] ?? "0", 10);
const app = buildApp({ logger: false });
const address = await app.listen({ port, host: "127.0.0.1" });
console.log(JSON.stringify({ listening: address, port: new URL(address).port }));
const stop = async () => { await app.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
