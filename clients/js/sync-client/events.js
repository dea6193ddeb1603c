// The events a client emits, and who listens to them.

/** Every event name `on()` accepts. */
export const EVENTS = Object.freeze(['change', 'rejected', 'status', 'error', 'presence']);

export class Emitter {
  constructor() {
    this.listeners = new Map(EVENTS.map((name) => [name, new Set()]));
  }

  /** Adds a listener; returns the function that removes it. Throws for a name not in EVENTS. */
  on(event, fn) {
    const set = this.listeners.get(event);
    if (!set) throw new TypeError(`on(${JSON.stringify(event)}): no such event; the events are ${EVENTS.join(', ')}`);
    if (typeof fn !== 'function') throw new TypeError(`on(${JSON.stringify(event)}, fn): fn must be a function`);
    set.add(fn);
    return () => set.delete(fn);
  }

  // Events are emitted from socket handlers and in the middle of the
  // client's bookkeeping: a listener that throws must not stop the others
  // or leave the client half updated. Its error is thrown again on its own
  // (a microtask), where the runtime reports uncaught errors.
  emit(event, value) {
    for (const fn of this.listeners.get(event)) {
      try {
        fn(value);
      } catch (e) {
        queueMicrotask(() => { throw e; });
      }
    }
  }
}
