// Stand-in deployment.js for processor dev (placeholder).
window.liveagent = window.liveagent || {};
