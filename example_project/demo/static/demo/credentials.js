// The username is plain browser state: the page reads and writes it itself. The password is
// encrypted browser state: only the server reads and writes it, the browser keeps ciphertext.
const { browser } = statekit;
const form = document.getElementById("credentials");
const username = document.getElementById("username");
const password = document.getElementById("password");
const note = document.getElementById("note");

function showStorage() {
  const prefix = statekit.config.browser.prefix;
  document.getElementById("storage").textContent = ["username", "password"]
    .map((name) => `${prefix}${name} = ${localStorage.getItem(prefix + name)}`)
    .join("\n");
}

username.value = browser.get("username");
username.addEventListener("input", () => browser.set("username", username.value));
browser.subscribe("username", (value) => {
  if (username.value !== value) username.value = value; // from the server, or another tab
  showStorage();
});
browser.subscribe("password", showStorage); // no value: it is encrypted

// Like Gradio's demo.load: the request carries the ciphertext, the server decrypts it.
fetch(form.dataset.load)
  .then((response) => response.json())
  .then((saved) => {
    password.value = saved.password;
    showStorage();
  });

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  await demo.post(form.action, new FormData(form)); // the answer stores the new ciphertext
  note.textContent = "Password saved.";
});

document.getElementById("generate").addEventListener("click", async () => {
  const generated = await demo.post(form.dataset.generate); // both written by the server
  password.value = generated.password; // the username arrives through subscribe()
  note.textContent = "Generated and saved.";
});

document.getElementById("forget").addEventListener("click", () => {
  browser.remove("username");
  browser.remove("password");
  password.value = "";
  note.textContent = "Forgotten.";
});
