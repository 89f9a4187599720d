// Live in every tab of this session: the cart, and the count on_change derives from it.
const cartList = document.getElementById("cart");
const cartCount = document.getElementById("cart-count");

statekit.watch("cart", (items) => demo.list(cartList, items), { scope: "session" });
statekit.watch("cart_count", (count) => (cartCount.textContent = count), { scope: "session" });
