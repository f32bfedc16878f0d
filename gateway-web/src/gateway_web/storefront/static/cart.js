// The cart lives in this browser (localStorage) until an order is placed; gateway-web prices it.
import { newIdempotencyKey } from "./api.js";

const CART_KEY = "msa.cart";
// The checkout not answered yet: its key and body. A retried click (after a 503, 429 or a lost
// answer) sends the same key, so orders places it at most once; a changed cart gets a new key.
const CHECKOUT_KEY = "msa.checkout";
export const MAX_QUANTITY = 100;
export const MAX_LINES = 20;

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

export function lines() {
  const stored = read(CART_KEY);
  return Array.isArray(stored) ? stored : [];
}

function save(items) {
  localStorage.setItem(CART_KEY, JSON.stringify(items));
  window.dispatchEvent(new Event("cartchange"));
}

export function count() {
  return lines().reduce((n, line) => n + line.quantity, 0);
}

/** Adds a product (a card of the API); false when the cart already holds MAX_LINES products. */
export function add(product, quantity = 1) {
  const items = lines();
  const line = items.find((l) => l.product_id === product.id);
  if (line) {
    line.quantity = Math.min(MAX_QUANTITY, line.quantity + quantity);
  } else {
    if (items.length >= MAX_LINES) return false;
    items.push({
      product_id: product.id,
      name: product.name,
      price_cents: product.price_cents,
      currency: product.currency,
      thumb_url: product.thumb_url,
      quantity: Math.min(MAX_QUANTITY, quantity),
    });
  }
  save(items);
  return true;
}

export function setQuantity(productId, quantity) {
  const q = Math.max(1, Math.min(MAX_QUANTITY, Math.trunc(quantity) || 1));
  save(lines().map((l) => (l.product_id === productId ? { ...l, quantity: q } : l)));
}

export function remove(productId) {
  save(lines().filter((l) => l.product_id !== productId));
}

export function clear() {
  save([]);
}

/** The order body of this cart, and its Idempotency-Key: the pending one if the body is unchanged. */
export function checkout() {
  const body = { lines: lines().map((l) => ({ product_id: l.product_id, quantity: l.quantity })) };
  const text = JSON.stringify(body);
  const pending = read(CHECKOUT_KEY);
  if (pending && pending.body === text) return { body, key: pending.key };
  const key = newIdempotencyKey();
  localStorage.setItem(CHECKOUT_KEY, JSON.stringify({ key, body: text }));
  return { body, key };
}

export function checkoutDone() {
  localStorage.removeItem(CHECKOUT_KEY);
  clear();
}

export function money(cents, currency) {
  return `${(cents / 100).toFixed(2)} ${currency}`;
}

/** What these lines cost, one amount per currency (none is converted): ["12.00 EUR", "5.00 USD"]. */
export function totals(items) {
  const sums = new Map();
  for (const l of items) sums.set(l.currency, (sums.get(l.currency) || 0) + l.price_cents * l.quantity);
  return [...sums].map(([currency, cents]) => money(cents, currency));
}
