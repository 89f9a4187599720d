// statekit.js sends this page's id with the fetch, so chat.update(request, ...) on the server
// changes this tab's history only. A new page load gets a new id: an empty history.
const form = document.getElementById("chat");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const { current, previous } = await demo.post(form.action, new FormData(form));
  document.getElementById("current").textContent = current;
  demo.list(document.getElementById("previous"), previous);
  form.elements.message.value = "";
});
