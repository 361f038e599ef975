#!/usr/bin/env python3
"""A hearth worker in Python, over the streaming worker protocol (/ws/worker).

Needs Python 3.9+ and one package: `pip install websockets` (13 or newer).
Settings come from the environment:
  HEARTH_URL         http://127.0.0.1:8080 by default
  HEARTH_API_KEY     an admin key (leave unset when hearth runs without keys)
  HEARTH_QUEUES      comma-separated queues, "default" by default
  HEARTH_CREDIT      most jobs held at once, 10 by default
  HEARTH_STOP_AFTER  stop after that many acknowledged jobs (default: run forever)

Delivery is at least once: a job held when the connection drops goes back to the
queue and may run again, so make `handle` safe to repeat. A job that runs longer than
its lease (60 s by default) must send {"op": "heartbeat", "id": ...} meanwhile.
"""
import asyncio
import json
import os
import time

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

URL = os.environ.get("HEARTH_URL", "http://127.0.0.1:8080").replace("http", "ws", 1) + "/ws/worker"
KEY = os.environ.get("HEARTH_API_KEY")
QUEUES = os.environ.get("HEARTH_QUEUES", "default").split(",")
CREDIT = int(os.environ.get("HEARTH_CREDIT", "10"))
STOP_AFTER = int(os.environ.get("HEARTH_STOP_AFTER", "0"))


async def handle(job):
    """Your work: return a JSON value as the job's result, or raise to fail the attempt."""
    return {"echo": job["payload"]}


async def run(ws, job):
    try:
        frame = {"op": "complete", "id": job["id"], "result": await handle(job)}
    except Exception as e:  # the attempt failed: hearth retries it after its backoff
        frame = {"op": "fail", "id": job["id"], "error": repr(e)}
    await ws.send(json.dumps(frame))


async def work(acked):
    """One connection: subscribe, run each job pushed, count the acks. True when done."""
    headers = {"Authorization": f"Bearer {KEY}"} if KEY else {}
    async with connect(URL, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "queues": QUEUES, "credit": CREDIT}))
        running = set()
        async for text in ws:
            msg = json.loads(text)
            if msg["op"] == "job":
                task = asyncio.create_task(run(ws, msg))
                running.add(task)
                task.add_done_callback(running.discard)
            elif msg["op"] == "ack":  # the job's end is durable
                acked[0] += 1
                if STOP_AFTER and acked[0] >= STOP_AFTER:
                    return True
            elif msg["op"] == "error":
                print("hearth refused a frame:", msg, flush=True)
    return False


async def main():
    acked, start = [0], time.monotonic()
    while True:
        try:
            if await work(acked):
                break
        except (OSError, WebSocketException) as e:  # refused, dropped, or a failed handshake
            print(f"connection lost ({e!r}); reconnecting in 1 s", flush=True)
        await asyncio.sleep(1)
    print(json.dumps({"processed": acked[0], "seconds": round(time.monotonic() - start, 3)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
