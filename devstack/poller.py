"""A local stand-in for Lambda's SQS event source mapping.

Each worker process receives batches from the emails queue, builds the same event Lambda would
(records with attributes and message attributes), calls the real processor handler, deletes the
records it did not report as failed, and leaves the failed ones for redelivery; the queue's redrive
policy moves a record to the DLQ after maxReceiveCount receives, as on AWS.

Written here because no library emulates the event source mapping; it is small on purpose.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import uuid
from dataclasses import dataclass

from swordfish import constants

# Lambda keeps a failed record invisible until its visibility timeout ends (3 minutes here).
# Locally we make it visible again after a short backoff instead, so a retry shows up in seconds.
LOCAL_RETRY_BACKOFF_SECONDS = 1


@dataclass
class FakeLambdaContext:
    function_name: str = "swordfish-email-processor"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    timeout_seconds: int = constants.PROCESSOR_TIMEOUT_SECONDS

    def __post_init__(self):
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:000000000000:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function with an SQS event source, as the poller runs it."""

    module: str
    queue_url_env: str
    queue_name: str
    warm_up: str | None = None


FUNCTIONS = {
    "processor": FunctionSpec("handlers.processor", f"{constants.ENV_PREFIX}EMAILS_QUEUE_URL",
                              constants.EMAILS_QUEUE_NAME, warm_up="get_pipeline"),
    "remediation": FunctionSpec("handlers.remediation", f"{constants.ENV_PREFIX}REMEDIATION_RETRY_QUEUE_URL",
                                constants.REMEDIATION_RETRY_QUEUE_NAME, warm_up="remediation_retry"),
    "response": FunctionSpec("handlers.response_jobs", f"{constants.ENV_PREFIX}RESPONSE_JOBS_QUEUE_URL",
                             constants.RESPONSE_JOBS_QUEUE_NAME, warm_up="response_worker"),
    "alerts": FunctionSpec("handlers.alerts", f"{constants.ENV_PREFIX}ALERTS_QUEUE_URL", constants.ALERTS_QUEUE_NAME,
                           warm_up="alert_dispatcher"),
}


def to_lambda_record(message: dict, queue_arn: str, region: str) -> dict:
    """One SQS ReceiveMessage entry in the shape Lambda's event source mapping delivers."""
    attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
    message_attributes = {
        name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
               "stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "String")}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def worker_main(env: dict[str, str], worker_id: int, stop, ready=None, log_dir: str | None = None,
                batch_size: int = constants.PROCESSOR_BATCH_SIZE, function: str = "processor") -> None:
    """The body of one worker process (a Lambda container, in effect)."""
    os.environ.update(env)
    os.environ["SWORDFISH_WORKER_NAME"] = f"{function}-{worker_id}"  # its name in the heartbeats
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    if log_dir:  # structured logs and EMF metrics, as CloudWatch would collect them
        name = "worker" if function == "processor" else function
        log = open(os.path.join(log_dir, f"{name}-{worker_id}.log"), "a", buffering=1)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)

    import importlib

    import boto3
    from swordfish.monitoring import error_tracker

    error_tracker.install_process_hooks()
    spec = FUNCTIONS[function]
    module = importlib.import_module(spec.module)
    handler = module.handler
    if spec.warm_up:  # Lambda's init phase: pool, clients and caches built before the first event
        getattr(module, spec.warm_up)()

    prefix = constants.ENV_PREFIX
    region = env[f"{prefix}AWS_REGION"]
    queue_url = env[spec.queue_url_env]
    sqs = boto3.client("sqs", region_name=region, endpoint_url=env[f"{prefix}SQS_ENDPOINT_URL"])
    queue_arn = f"arn:aws:sqs:{region}:000000000000:{spec.queue_name}"
    heartbeat = _heartbeat(env, function, worker_id)
    if ready is not None:
        ready.release()
    profile_dir = os.environ.get("SWORDFISH_WORKER_PROFILE_DIR")
    if profile_dir:  # where does a worker's time go under load: cProfile, dumped when it stops
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            _poll(sqs, queue_url, queue_arn, region, handler, worker_id, stop, batch_size, heartbeat)
        finally:
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"worker-{worker_id}.prof"))
        return
    _poll(sqs, queue_url, queue_arn, region, handler, worker_id, stop, batch_size, heartbeat)


def _heartbeat(env: dict[str, str], function: str, worker_id: int):
    """A callable the poll loop calls each turn (``final=True`` when it stops on purpose). The beat
    itself comes from a thread (monitoring.progress.WorkerHeartbeat), so a worker blocked on the
    database pool during an outage keeps saying it lives, and what it waits for."""
    from swordfish.monitoring.progress import ProgressRecorder, WorkerHeartbeat

    url = env.get(f"{constants.ENV_PREFIX}REDIS_URL")
    if not url:
        return lambda final=False: None
    heartbeat = WorkerHeartbeat(ProgressRecorder.from_url(url, timeout=0.3), f"{function}-{worker_id}").start()

    def turn(final: bool = False) -> None:
        if final:
            heartbeat.stop()  # stopped on purpose: not a dead worker
        else:
            heartbeat.loop()

    return turn


def _poll(sqs, queue_url: str, queue_arn: str, region: str, handler, worker_id: int, stop, batch_size: int,
          heartbeat=lambda final=False: None) -> None:
    try:
        _poll_loop(sqs, queue_url, queue_arn, region, handler, worker_id, stop, batch_size, heartbeat)
    finally:
        heartbeat(final=True)


def _poll_loop(sqs, queue_url, queue_arn, region, handler, worker_id, stop, batch_size, heartbeat) -> None:
    while not stop.is_set():
        heartbeat()
        try:
            response = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=1,
                VisibilityTimeout=constants.VISIBILITY_TIMEOUT_SECONDS,
                AttributeNames=["All"], MessageAttributeNames=["All"])
        except Exception as exc:  # the emulator going away at shutdown, or a blip: try again
            if stop.is_set():
                break
            print(f"worker {worker_id}: receive failed: {exc}", flush=True)
            time.sleep(0.5)
            continue
        messages = response.get("Messages", [])
        if not messages:
            continue
        event = {"Records": [to_lambda_record(m, queue_arn, region) for m in messages]}
        try:
            result = handler(event, FakeLambdaContext())
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception as exc:  # a handler crash fails the whole batch, as on Lambda
            print(f"worker {worker_id}: handler raised {type(exc).__name__}: {exc}", flush=True)
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            try:
                sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
            except Exception as exc:  # an error path, not a crash: the verdicts are stored (idempotently)
                print(f"worker {worker_id}: queue delete failed for {len(chunk)} message(s): {type(exc).__name__}: "
                      f"{exc}; they are redelivered after the visibility timeout (their verdicts stand)", flush=True)
        retry = [m for m in messages if m["MessageId"] in failed]
        if retry:
            try:
                sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": LOCAL_RETRY_BACKOFF_SECONDS}
                    for i, m in enumerate(retry)])
            except Exception as exc:  # they come back after the full visibility timeout instead
                print(f"worker {worker_id}: visibility change failed for {len(retry)} message(s): "
                      f"{type(exc).__name__}: {exc}", flush=True)


class WorkerPool:
    """N worker processes; stopped (and joined, or killed) when the owner leaves the block."""

    def __init__(self, env: dict[str, str], workers: int = 3, log_dir: str | os.PathLike | None = None,
                 function: str = "processor"):
        self.env, self.count, self.function = env, workers, function
        self.log_dir = str(log_dir) if log_dir else None
        self.ctx = mp.get_context("spawn")
        self.stop_event = self.ctx.Event()
        self.ready = self.ctx.Semaphore(0)
        self.processes: list[mp.Process] = []

    def _spawn(self, i: int) -> mp.Process:
        proc = self.ctx.Process(target=worker_main, args=(self.env, i, self.stop_event, self.ready, self.log_dir),
                                kwargs={"function": self.function}, daemon=True,
                                name=f"swordfish-{self.function}-{i}")
        proc.start()
        return proc

    def start(self, wait_ready: float = 60) -> WorkerPool:
        for i in range(self.count):
            self.processes.append(self._spawn(i))
        for _ in range(self.count):  # each worker has imported the handler and built its clients
            if not self.ready.acquire(timeout=wait_ready):
                self.stop()
                raise RuntimeError(f"workers not ready after {wait_ready}s (see {self.log_dir or 'stderr'})")
        return self

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid]

    def alive(self, i: int) -> bool:
        return self.stop_event.is_set() or (i < len(self.processes) and self.processes[i].is_alive())

    def respawn(self, i: int) -> None:
        """Replace worker ``i`` (dead) with a new process: Lambda starting a new container."""
        if self.stop_event.is_set():
            return
        old = self.processes[i]
        old.join(0)  # reap it
        self.processes[i] = self._spawn(i)

    def supervise(self, supervisor) -> WorkerPool:
        """Have ``supervisor`` restart any worker of this pool that dies."""
        for i in range(self.count):
            supervisor.watch(f"{self.function}-{i}", lambda i=i: self.alive(i), lambda i=i: self.respawn(i))
        return self

    def stop(self, timeout: float = 10) -> None:
        self.stop_event.set()
        for proc in self.processes:
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        self.processes.clear()

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
