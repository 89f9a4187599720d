// The visitor counter, live: statekit.watch delivers the current count, then every change
// (another tab, another browser, another server process), over the websocket.
statekit.watch("visitors", (count) => {
  document.getElementById("visitors").textContent = count;
});
