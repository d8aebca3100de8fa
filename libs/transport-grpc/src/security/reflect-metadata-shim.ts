/**
 * @peculiar/x509 depends on tsyringe, which refuses to load without a `Reflect.getMetadata`
 * polyfill (normally the `reflect-metadata` package, not installed here). tsyringe only uses
 * define/get/getOwn metadata for constructor parameter types, so this WeakMap-backed subset is
 * enough. It must be imported before @peculiar/x509 and installs nothing if a polyfill exists.
 */
type Store = Map<string | symbol, unknown>;
const metadata = new WeakMap<object, Map<string | symbol | undefined, Store>>();

function table(target: object, property: string | symbol | undefined, create: boolean): Store | undefined {
  let byProp = metadata.get(target);
  if (!byProp) {
    if (!create) return undefined;
    byProp = new Map();
    metadata.set(target, byProp);
  }
  let t = byProp.get(property);
  if (!t && create) {
    t = new Map();
    byProp.set(property, t);
  }
  return t;
}

const R = Reflect as unknown as Record<string, unknown>;
if (typeof R.getMetadata !== 'function') {
  const getOwnMetadata = (key: string | symbol, target: object, property?: string | symbol): unknown => table(target, property, false)?.get(key);
  const getMetadata = (key: string | symbol, target: object, property?: string | symbol): unknown => {
    for (let o: object | null = target; o; o = Object.getPrototypeOf(o) as object | null) {
      const t = table(o, property, false);
      if (t?.has(key)) return t.get(key);
    }
    return undefined;
  };
  Object.assign(R, {
    defineMetadata: (key: string | symbol, value: unknown, target: object, property?: string | symbol) => void table(target, property, true)!.set(key, value),
    getOwnMetadata,
    getMetadata,
    hasMetadata: (key: string | symbol, target: object, property?: string | symbol) => getMetadata(key, target, property) !== undefined,
    metadata: (key: string | symbol, value: unknown) => (target: object, property?: string | symbol) => void table(target, property, true)!.set(key, value),
  });
}

export {};
