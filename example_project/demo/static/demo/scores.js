// Everyone's scores, live: after a submission from anyone, the top 3 and how many.
statekit.watch("scores", (scores) => {
  const top = [...scores].sort((a, b) => b - a).slice(0, 3);
  demo.list(document.getElementById("top"), top);
  document.getElementById("count").textContent = scores.length;
});
