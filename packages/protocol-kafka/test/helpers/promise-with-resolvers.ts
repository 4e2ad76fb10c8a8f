// @platformatic/kafka targets Node 22 and calls Promise.withResolvers, which Node 20 lacks; the
// tests run on Node 20, so they supply it (same behaviour, ES2024).
const PromiseWithResolvers = Promise as unknown as {
  withResolvers?: <T>() => {
    promise: Promise<T>;
    resolve: (value: T) => void;
    reject: (reason?: unknown) => void;
  };
};
PromiseWithResolvers.withResolvers ??= <T>() => {
  let resolve!: (value: T) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};
