// msa storefront: hash routes, one view at a time, DOM built with textContent only (no innerHTML),
// every call through api.js. No framework, no build step.
import { api, ApiError, config, csrfToken, forgetCsrfToken, loadConfig, onAnswer } from "./api.js";
import * as cart from "./cart.js";

const $ = (id) => document.getElementById(id);
const view = $("view");
const PAGE_SIZE = 12;
const ORDERS_PAGE_SIZE = 10;
const TRACE_ID = /^[0-9a-f]{32}$/;
// What a shopper reads when an optional part of an answer is missing (gateway-web's `degraded`).
const PARTS = {
  reviews: "Reviews are unavailable right now",
  inventory: "Stock levels are unavailable right now",
  catalog: "Product pictures are unavailable right now",
};
const CATEGORIES_KEY = "msa.categories";
const RETURN_KEY = "msa.return";

let user = null; // the /auth/me answer while logged in
let degraded = new Set(); // parts missing from the answers of the current view
let renderSeq = 0; // a view whose answers arrive after the next navigation drops them

// Every call is tagged with the view that made it: a view left behind changes nothing on screen.
const call = (path, options = {}) => api(path, { ...options, tag: renderSeq });

// ---- small DOM helpers ----------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// Only pictures of this origin (CSP would block others anyway). Resolved as the browser would:
// "//host/x" and "/\host/x" are other hosts.
function sameOrigin(url) {
  try {
    return typeof url === "string" && new URL(url, location.origin).origin === location.origin;
  } catch {
    return false;
  }
}

function picture(url, className) {
  return sameOrigin(url) ? h("img", { src: url, alt: "", class: className, loading: "lazy" }) : h("span", { class: `${className} no-picture` });
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

// ---- platform feedback: banner, notices, footer ---------------------------------------------------
function renderBanner() {
  const banner = $("degraded");
  const messages = [...degraded].map((part) => PARTS[part] || `Part of this page (${part}) is unavailable right now`);
  banner.textContent = messages.length ? `${messages.join(". ")}. The rest of the shop works.` : "";
  banner.hidden = messages.length === 0;
}

function notify(text, kind = "error") {
  $("notice-text").textContent = text;
  $("notice").dataset.kind = kind;
  $("notice").hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice-text").textContent = "";
}

function explain(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err}`;
  const detail = err.problem.detail || err.problem.title || "";
  const wait = err.retryAfter !== null ? ` Please try again in ${err.retryAfter} s.` : " Please try again shortly.";
  if (err.status === 503) return `The shop cannot do this right now${detail ? `: ${detail}` : "."}${wait}`;
  if (err.status === 429) return `Too many requests${detail ? `: ${detail}` : "."}${wait}`;
  if (err.status === 0) return err.message;
  return detail || `The request failed (HTTP ${err.status}).`;
}

function showError(err) {
  notify(explain(err), "error");
}

// A link only for a sampled trace: Zipkin never receives the others.
function showTrace(traceId, sampled) {
  if (!traceId || !TRACE_ID.test(traceId)) return;
  if (!sampled) return $("trace").replaceChildren(h("span", { id: "trace-id" }, traceId), " (not sampled: not in Zipkin)");
  if (!config.zipkin_ui_url) return $("trace").replaceChildren(h("span", { id: "trace-id" }, traceId));
  const link = h("a", { href: `${config.zipkin_ui_url}/zipkin/traces/${traceId}`, target: "_blank", rel: "noopener", id: "trace-link" }, traceId);
  $("trace").replaceChildren("trace ", link, " in Zipkin");
}

onAnswer(({ tag, traceId, sampled, degraded: parts }) => {
  showTrace(traceId, sampled);
  if (tag !== renderSeq || parts.length === 0) return; // the parts of a view left behind are not this one's
  for (const part of parts) degraded.add(part);
  renderBanner();
});

// ---- session ------------------------------------------------------------------------------------------
// Signed in without the session's CSRF token (its cookie gone, or refused), a tab can read but not
// write: it offers "Log in" again (a new login replaces the session) instead of a Log out that fails.
function canWrite() {
  return Boolean(user && csrfToken());
}

function renderUser() {
  $("user").textContent = user ? `Signed in as ${user.sub}` : "";
  $("user").hidden = !user;
  $("orders-link").hidden = !user;
  $("login-link").hidden = canWrite();
  $("logout-button").hidden = !canWrite();
}

async function loadUser() {
  try {
    user = (await call("/auth/me")).data;
  } catch (err) {
    user = null;
    if (!(err instanceof ApiError) || err.status !== 401) showError(err);
  }
  renderUser();
}

// A write refused for its CSRF token: the session changed in another tab (logged out, or in again
// as someone else) or the token cookie is stale. Drop the token, re-read the session, say what now.
async function csrfRejected() {
  forgetCsrfToken();
  await loadUser();
  await render();
  notify(`Nothing was changed: ${user ? "the session changed in another tab or window" : "the session has ended"}. Log in again to continue.`);
}

/** What a failed write says: 401 asks for a login, a refused CSRF token re-syncs the session. */
function writeFailed(err) {
  if (err instanceof ApiError && err.status === 401) return needLogin();
  if (err instanceof ApiError && err.csrfRejected) return csrfRejected();
  showError(err);
}

function needLogin() {
  sessionStorage.setItem(RETURN_KEY, location.hash || "#/");
  location.hash = "#/login";
}

async function logout() {
  try {
    await call("/auth/logout", { method: "POST" });
  } catch (err) {
    return writeFailed(err);
  }
  user = null;
  renderUser();
  location.hash = "#/";
}

// ---- views ----------------------------------------------------------------------------------------------
function stockText(stock) {
  if (!stock) return "Stock unknown";
  return stock.in_stock ? `In stock (${stock.available})` : "Out of stock";
}

function ratingText(rating) {
  if (!rating) return "Rating unavailable";
  if (rating.average === null || rating.count === 0) return "No reviews yet";
  return `★ ${rating.average.toFixed(1)} (${rating.count} review${rating.count === 1 ? "" : "s"})`;
}

function addButton(product, quantityOf = () => 1) {
  const soldOut = product.stock !== null && !product.stock.in_stock;
  return h(
    "button",
    {
      type: "button",
      class: "add",
      disabled: soldOut,
      "aria-label": `Add ${product.name} to cart`,
      onclick: () => {
        if (cart.add(product, quantityOf())) notify(`${product.name} added to your cart.`, "info");
        else notify(`Your cart holds at most ${cart.MAX_LINES} products.`);
      },
    },
    soldOut ? "Sold out" : "Add to cart",
  );
}

async function categories() {
  const kept = JSON.parse(sessionStorage.getItem(CATEGORIES_KEY) || "null");
  if (Array.isArray(kept)) return kept;
  try {
    const { data } = await call("/api/products?size=100");
    const found = [...new Set(data.items.map((p) => p.category))].sort();
    if (data.total <= data.items.length) sessionStorage.setItem(CATEGORIES_KEY, JSON.stringify(found));
    return found;
  } catch {
    return []; // the listing itself says what went wrong
  }
}

async function listView(params, seq) {
  const q = params.get("q") || "";
  const category = params.get("category") || "";
  const page = Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1);
  const query = new URLSearchParams({ page: String(page), size: String(PAGE_SIZE) });
  if (q) query.set("q", q);
  if (category) query.set("category", category);
  const [listing, known] = await Promise.all([call(`/api/products?${query}`).then((r) => r.data, (err) => err), categories()]);
  if (seq !== renderSeq) return;

  const select = h("select", { id: "category", name: "category" }, h("option", { value: "" }, "All categories"));
  for (const name of new Set([...known, ...(category ? [category] : [])])) {
    select.append(h("option", { value: name, selected: name === category }, name));
  }
  const form = h(
    "form",
    { class: "search", role: "search", onsubmit: (e) => (e.preventDefault(), go({ q: form.elements.q.value.trim(), category: select.value })) },
    h("label", { for: "q" }, "Search"),
    h("input", { id: "q", name: "q", type: "search", value: q, maxlength: 100, placeholder: "tent, boot, merino…" }),
    h("label", { for: "category" }, "Category"),
    select,
    h("button", { type: "submit" }, "Search"),
  );
  select.addEventListener("change", () => go({ q: form.elements.q.value.trim(), category: select.value }));
  const go = (values) => {
    const next = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v) next.set(k, v);
    location.hash = `#/?${next}`;
  };

  if (listing instanceof Error) {
    showError(listing);
    show(h("h1", {}, "Products"), form, h("p", { class: "empty" }, "The products cannot be shown right now."));
    return;
  }
  const pages = Math.max(1, Math.ceil(listing.total / listing.size));
  const cards = listing.items.map((p) =>
    h(
      "li",
      { class: "card", "data-id": p.id },
      h("a", { href: `#/product/${encodeURIComponent(p.id)}`, class: "card-link" }, picture(p.thumb_url, "thumb"), h("h2", {}, p.name)),
      h("p", { class: "muted" }, `${p.brand} · ${p.category}`),
      h("p", { class: "price" }, p.price),
      h("p", { class: "stock" }, stockText(p.stock)),
      h("p", { class: "rating" }, ratingText(p.rating)),
      addButton(p),
    ),
  );
  const pageLink = (n, text, rel) => {
    const next = new URLSearchParams(params);
    next.set("page", String(n));
    return h("a", { href: `#/?${next}`, rel, class: "page-link" }, text);
  };
  show(
    h("h1", {}, "Products"),
    form,
    h("p", { class: "muted", id: "result-count" }, `${listing.total} product${listing.total === 1 ? "" : "s"}${q ? ` for “${q}”` : ""}${category ? ` in ${category}` : ""}`),
    cards.length ? h("ul", { class: "grid", id: "products" }, cards) : h("p", { class: "empty" }, "Nothing found."),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      page > 1 ? pageLink(page - 1, "← Previous", "prev") : null,
      h("span", {}, `Page ${page} of ${pages}`),
      page < pages ? pageLink(page + 1, "Next →", "next") : null,
    ),
  );
}

async function productView(productId, seq) {
  let product;
  try {
    product = (await call(`/api/products/${encodeURIComponent(productId)}`)).data;
  } catch (err) {
    if (seq !== renderSeq) return;
    showError(err);
    show(h("p", {}, h("a", { href: "#/" }, "← All products")), h("p", { class: "empty" }, "This product cannot be shown right now."));
    return;
  }
  if (seq !== renderSeq) return;
  const quantity = h("input", { id: "quantity", type: "number", min: 1, max: cart.MAX_QUANTITY, value: 1, inputmode: "numeric" });
  const reviews = product.latest_reviews;
  show(
    h("p", {}, h("a", { href: "#/" }, "← All products")),
    h(
      "article",
      { class: "product", "data-id": product.id },
      picture(product.image_url, "hero"),
      h(
        "div",
        { class: "details" },
        h("h1", {}, product.name),
        h("p", { class: "muted" }, `${product.brand} · ${product.category}`),
        h("p", {}, product.description),
        h("p", { class: "price" }, product.price),
        h("p", { class: "stock", id: "stock" }, stockText(product.stock)),
        h("p", { class: "rating", id: "rating" }, ratingText(product.rating)),
        h("p", { class: "buy" }, h("label", { for: "quantity" }, "Quantity"), quantity, addButton(product, () => Number.parseInt(quantity.value, 10) || 1)),
      ),
    ),
    h(
      "section",
      { class: "reviews", "aria-labelledby": "reviews-title" },
      h("h2", { id: "reviews-title" }, "Latest reviews"),
      reviews === null
        ? h("p", { class: "empty", id: "reviews-unavailable" }, `${PARTS.reviews}.`)
        : reviews.length === 0
          ? h("p", { class: "empty" }, "No reviews yet: be the first.")
          : h(
              "ul",
              { class: "review-list", id: "reviews" },
              reviews.map((r) =>
                h(
                  "li",
                  {},
                  h("p", {}, h("strong", {}, `${"★".repeat(r.rating)}${"☆".repeat(5 - r.rating)} ${r.title}`)),
                  r.body ? h("p", {}, r.body) : null,
                  h("p", { class: "muted" }, `${r.author}, ${new Date(r.created_at).toLocaleDateString()}`),
                ),
              ),
            ),
      canWrite() ? reviewForm(product) : h("p", {}, h("a", { href: "#/login", onclick: (e) => (e.preventDefault(), needLogin()) }, "Log in to write a review")),
    ),
  );
}

function reviewForm(product) {
  const rating = h("select", { id: "review-rating", name: "rating", required: true }, [5, 4, 3, 2, 1].map((n) => h("option", { value: n }, `${n} star${n === 1 ? "" : "s"}`)));
  const title = h("input", { id: "review-title", name: "title", required: true, maxlength: 120 });
  const body = h("textarea", { id: "review-body", name: "body", rows: 4, maxlength: 4000 });
  const submit = h("button", { type: "submit" }, "Post review");
  const form = h(
    "form",
    {
      class: "review-form",
      id: "review-form",
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        try {
          const review = { rating: Number(rating.value), title: title.value.trim(), body: body.value.trim() };
          await call(`/api/products/${encodeURIComponent(product.id)}/reviews`, { method: "POST", body: review });
          notify("Thank you: your review is posted.", "info");
          render();
        } catch (err) {
          writeFailed(err);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h3", {}, "Write a review"),
    h("label", { for: "review-rating" }, "Rating"),
    rating,
    h("label", { for: "review-title" }, "Title"),
    title,
    h("label", { for: "review-body" }, "Review"),
    body,
    submit,
  );
  return form;
}

function cartView() {
  const items = cart.lines();
  if (items.length === 0) {
    show(h("h1", {}, "Your cart"), h("p", { class: "empty" }, "Your cart is empty. ", h("a", { href: "#/" }, "Browse the products")));
    return;
  }
  const rows = items.map((l) => {
    const id = `qty-${l.product_id}`;
    return h(
      "li",
      { class: "cart-line", "data-id": l.product_id },
      picture(l.thumb_url, "thumb small"),
      h("a", { href: `#/product/${encodeURIComponent(l.product_id)}` }, l.name),
      h("span", { class: "muted" }, cart.money(l.price_cents, l.currency)),
      h("label", { for: id, class: "visually-hidden" }, `Quantity of ${l.name}`),
      h("input", { id, type: "number", min: 1, max: cart.MAX_QUANTITY, value: l.quantity, onchange: (e) => (cart.setQuantity(l.product_id, Number(e.target.value)), cartView()) }),
      h("span", { class: "line-total" }, cart.money(l.price_cents * l.quantity, l.currency)),
      h("button", { type: "button", "aria-label": `Remove ${l.name}`, onclick: () => (cart.remove(l.product_id), cartView()) }, "Remove"),
    );
  });
  const place = h("button", { type: "button", id: "place-order", class: "primary", onclick: () => placeOrder(place) }, "Place order");
  show(
    h("h1", {}, "Your cart"),
    h("ul", { class: "cart", id: "cart-lines" }, rows),
    h("p", { class: "total", id: "cart-total" }, `Total: ${cart.totals(items).join(" + ")}`),
    canWrite() ? place : h("p", {}, h("a", { href: "#/login", onclick: (e) => (e.preventDefault(), needLogin()) }, "Log in to place your order")),
  );
}

async function placeOrder(button) {
  const { body, key } = cart.checkout(); // the same key again while this cart's order is unanswered
  button.disabled = true;
  button.textContent = "Placing your order…";
  try {
    const { data } = await call("/api/orders", { method: "POST", body, headers: { "Idempotency-Key": key } });
    cart.checkoutDone();
    location.hash = `#/orders?placed=${encodeURIComponent(data.id)}`;
  } catch (err) {
    button.disabled = false;
    button.textContent = "Place order";
    writeFailed(err);
  }
}

async function ordersView(params, seq) {
  if (!user) return needLogin();
  const page = Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1);
  const placed = params.get("placed");
  let listing;
  try {
    listing = (await call(`/api/orders?page=${page}&size=${ORDERS_PAGE_SIZE}`)).data;
  } catch (err) {
    if (seq !== renderSeq) return;
    if (err instanceof ApiError && err.status === 401) return needLogin();
    showError(err);
    show(h("h1", {}, "My orders"), h("p", { class: "empty" }, "Your orders cannot be shown right now."));
    return;
  }
  if (seq !== renderSeq) return;
  if (placed) notify(`Thank you: order ${placed} is placed.`, "info");
  const pages = Math.max(1, Math.ceil(listing.total / listing.size));
  const orders = listing.items.map((o) =>
    h(
      "li",
      { class: `order${o.id === placed ? " placed" : ""}`, "data-id": o.id },
      h("h2", {}, `Order ${o.id}`),
      h("p", { class: "muted" }, `${new Date(o.created_at).toLocaleString()} · ${o.status}`),
      h(
        "ul",
        { class: "order-lines" },
        o.lines.map((l) => h("li", {}, picture(l.thumb_url, "thumb small"), `${l.name} × ${l.quantity}`, h("span", { class: "line-total" }, cart.money(l.line_total_cents, o.currency)))),
      ),
      h("p", { class: "total" }, `Total: ${o.total}`),
    ),
  );
  show(
    h("h1", {}, "My orders"),
    orders.length ? h("ol", { class: "orders", id: "orders" }, orders) : h("p", { class: "empty" }, "No orders yet."),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      page > 1 ? h("a", { href: `#/orders?page=${page - 1}`, rel: "prev" }, "← Newer") : null,
      h("span", {}, `Page ${page} of ${pages}`),
      page < pages ? h("a", { href: `#/orders?page=${page + 1}`, rel: "next" }, "Older →") : null,
    ),
  );
}

function notFoundView() {
  show(h("h1", {}, "Not found"), h("p", { class: "empty", id: "not-found" }, "There is no such page. ", h("a", { href: "#/" }, "Browse the products")));
}

function loginView() {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true, maxlength: 64 });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true, maxlength: 256 });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    {
      class: "login",
      id: "login-form",
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        try {
          const { data } = await call("/auth/login", { method: "POST", body: { username: username.value, password: password.value } });
          user = data.user; // the answer set the session's cookies, the CSRF token's among them
          renderUser();
          clearNotice();
          const back = sessionStorage.getItem(RETURN_KEY);
          sessionStorage.removeItem(RETURN_KEY);
          location.hash = back && back !== "#/login" ? back : "#/";
        } catch (err) {
          showError(err);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    submit,
  );
  show(h("h1", {}, "Log in"), form, h("p", { class: "muted" }, "Demo accounts: alice / alice-password, bob / bob-password."));
  if (!user) username.focus();
}

// ---- routing ----------------------------------------------------------------------------------------
// A hand-typed or truncated link ("#/product/%E0") is no route: decodeURIComponent would throw.
function decodeOrNull(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

async function render() {
  const seq = ++renderSeq;
  degraded = new Set();
  renderBanner();
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const product = /^\/product\/(.+)$/.exec(path);
  if (product) {
    const id = decodeOrNull(product[1]);
    return id === null ? notFoundView() : productView(id, seq);
  }
  if (path === "/cart") return cartView();
  if (path === "/orders") return ordersView(params, seq);
  if (path === "/login") return loginView();
  return listView(params, seq);
}

function renderCartCount() {
  $("cart-count").textContent = String(cart.count());
}

async function start() {
  $("notice-close").addEventListener("click", clearNotice);
  // the skip link's #view would be a route: move the focus instead
  document.querySelector(".skip").addEventListener("click", (e) => (e.preventDefault(), view.focus()));
  $("logout-button").addEventListener("click", logout);
  $("login-link").addEventListener("click", (e) => {
    e.preventDefault();
    needLogin();
  });
  window.addEventListener("cartchange", renderCartCount);
  window.addEventListener("storage", renderCartCount); // another tab changed the cart
  window.addEventListener("hashchange", async () => {
    clearNotice();
    await render();
    view.focus({ preventScroll: false });
  });
  renderCartCount();
  try {
    await loadConfig();
  } catch (err) {
    showError(err); // the defaults still work
  }
  await loadUser();
  if (user && !csrfToken()) notify("Log in again to change anything: this tab has no CSRF token.");
  await render();
}

start();
