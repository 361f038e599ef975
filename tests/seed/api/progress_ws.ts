// Client subscribes to progress updates
const ws = new WebSocket('ws://localhost:8000/ws/progress');
ws.send(JSON.stringify({
  action: 'subscribe',
  progress_id: 'progress-id'
}));

// Server sends updates
{
  event: 'progress.update',
  data: {
    id: 'progress-id',
    progress: 50,
    stage: 'upload',
    status: 'processing'
  }
}
