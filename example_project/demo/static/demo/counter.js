// Like Gradio's guide: the page initializes its own object when it loads (demo.load), and the
// button increments it, on the server. statekit.js sends this page's id with each request.
const panel = document.getElementById("counter");
const time = (iso) => new Date(iso).toLocaleTimeString();

function showClosed(closed) {
  demo.list(
    document.getElementById("closed"),
    closed.map((c) => `${c.id}: closed with count ${c.count} at ${time(c.at)}`),
  );
}

function show({ counter, closed }) {
  document.getElementById("counter-id").textContent = counter.id;
  document.getElementById("counter-created").textContent = time(counter.created);
  document.getElementById("count").textContent = counter.count;
  showClosed(closed);
}

demo.post(panel.dataset.load).then(show);
document.getElementById("increment").addEventListener("click", () => {
  demo.post(panel.dataset.increment).then(show);
});
document.getElementById("refresh").addEventListener("click", async () => {
  const response = await fetch(panel.dataset.closed);
  showClosed((await response.json()).closed);
});
