// A hearth worker in Node, over the streaming worker protocol (/ws/worker).
//
// Needs Node 18+ and one package: `npm install ws`. Settings come from the environment:
//   HEARTH_URL         http://127.0.0.1:8080 by default
//   HEARTH_API_KEY     an admin key (leave unset when hearth runs without keys)
//   HEARTH_QUEUES      comma-separated queues, "default" by default
//   HEARTH_CREDIT      most jobs held at once, 10 by default
//   HEARTH_STOP_AFTER  stop after that many acknowledged jobs (default: run forever)
//
// Delivery is at least once: a job held when the connection drops goes back to the queue
// and may run again, so make `handle` safe to repeat. A job that runs longer than its
// lease (60 s by default) must send {op: 'heartbeat', id} meanwhile.
import WebSocket from 'ws';

const url = (process.env.HEARTH_URL || 'http://127.0.0.1:8080').replace(/^http/, 'ws') + '/ws/worker';
const key = process.env.HEARTH_API_KEY;
const queues = (process.env.HEARTH_QUEUES || 'default').split(',');
const credit = Number(process.env.HEARTH_CREDIT || 10);
const stopAfter = Number(process.env.HEARTH_STOP_AFTER || 0);

// Your work: return a JSON value as the job's result, or throw to fail the attempt.
async function handle(job) {
  return { echo: job.payload };
}

async function run(ws, job) {
  let frame;
  try {
    frame = { op: 'complete', id: job.id, result: await handle(job) };
  } catch (e) { // the attempt failed: hearth retries it after its backoff
    frame = { op: 'fail', id: job.id, error: String(e) };
  }
  ws.send(JSON.stringify(frame));
}

let acked = 0;
let stopping = false;
const start = performance.now();

function connect() {
  const ws = new WebSocket(url, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  ws.on('open', () => ws.send(JSON.stringify({ op: 'subscribe', queues, credit })));
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    if (msg.op === 'job') run(ws, msg);
    else if (msg.op === 'ack' && ++acked === stopAfter) { // the job's end is durable
      stopping = true;
      ws.close();
      const seconds = (performance.now() - start) / 1000;
      console.log(JSON.stringify({ processed: acked, seconds: Math.round(seconds * 1000) / 1000 }));
    } else if (msg.op === 'error') console.error('hearth refused a frame:', msg);
  });
  ws.on('error', (e) => console.error(`connection error (${e.message})`)); // 'close' follows
  ws.on('close', () => {
    if (!stopping) setTimeout(connect, 1000);
  });
}

connect();
