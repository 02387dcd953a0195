// The console's shared state: named slices, each written by exactly one module (its owner).
//
//   const offers = defineSlice("offers", new Map(), "views/offers.js"); // only the owner holds the writer
//   offers.changed({ type: "added", id });                              // after mutating, or offers.set(next)
//   subscribe("offers", (value, change) => ...);                        // anyone may listen ...
//   read("offers");                                                     // ... and read
//
// A slice's value may be a plain value (replaced with set) or a container the owner mutates in place and
// then announces with changed(). Subscribers get (value, change): `change` says what happened ({type, ...}),
// so a view can redraw one item instead of everything. Notification is synchronous, in subscription order.
// docs/subsystems/console.md lists the slices and their owners.

const slices = new Map(); // name -> {value, owner, subs}

function slice(name) {
  const s = slices.get(name);
  if (!s) throw new Error(`no state slice named ${name}`);
  return s;
}

function notify(s, change) {
  for (const fn of [...s.subs]) {
    try {
      fn(s.value, change);
    } catch (err) {
      // one broken view must not stop the others (nor the writer) from seeing the change
      setTimeout(() => {
        throw err;
      });
    }
  }
}

/** Create a slice; returns its writer, which only the owning module keeps. A second owner is a bug. */
export function defineSlice(name, initial, owner) {
  if (slices.has(name)) throw new Error(`state slice ${name} is already owned by ${slices.get(name).owner}`);
  const s = { value: initial, owner, subs: new Set() };
  slices.set(name, s);
  return {
    get: () => s.value,
    set(value, change = { type: "set" }) {
      s.value = value;
      notify(s, change);
    },
    changed(change = { type: "changed" }) {
      notify(s, change);
    },
  };
}

/** The current value of a slice. */
export function read(name) {
  return slice(name).value;
}

/** Call fn(value, change) on every change of the slice; returns the unsubscribe function. */
export function subscribe(name, fn) {
  const s = slice(name);
  s.subs.add(fn);
  return () => s.subs.delete(fn);
}

/** [{name, owner}] of every slice, for the docs and for debugging. */
export function owners() {
  return [...slices].map(([name, s]) => ({ name, owner: s.owner }));
}
