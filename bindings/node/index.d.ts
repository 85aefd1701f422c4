/** Thrown when a policy does not load. `file`, `line`, `column` locate the first error. */
export declare class PolicyError extends Error {
  readonly summary: string | null
  readonly file: string | null
  readonly line: number | null
  readonly column: number | null
  /** Every error of the load, rendered with its source line. */
  readonly errors: string[]
}

/**
 * Which binding artifact the generated loader actually loaded: `'native'` for
 * a native addon, otherwise the `platformArchABI` of the WASI flavor. Every
 * flavor napi-rs can build is listed, because `NAPI_RS_NATIVE_LIBRARY_PATH`
 * can point the loader at a WASI artifact this package does not build itself.
 */
export declare const __napiBindingTarget: 'native' | 'wasm32-wasi' | 'wasm32-wasip1'

/** One action to decide; a SQL text is parsed at `decide()` by the endpoint's parser. */
export declare class Action {}

/** The decision for one action. */
export declare class Decision {
  /** `allow`, `deny`, `approve` or `passthrough`. */
  get verdict(): string
  /** The deciding rule, or `null`. */
  get rule(): string | null
  /** The typed endpoint, or `null` when no endpoint claims the action. */
  get endpoint(): string | null
  /**
   * On a deny, what the agent is told (`denied by policy` when the rule gives no reason);
   * otherwise the rule's reason (possibly empty).
   */
  get reason(): string
  /** The approver chain of an `approve` verdict (typed references), else empty. */
  get approvers(): Array<string>
  /** True for `allow` and `passthrough`. */
  get allowed(): boolean
  /** Every rule evaluated, in order, with its result. */
  explain(): string
  /** The decision as a plain object (same keys as `clawpatrol eval` prints). */
  toJSON(): any
}

/** A compiled policy. */
export declare class Policy {
  /** Loads a config file, or every `*.hcl` of a directory in name order. */
  static load(path: string): Policy
  /** Compiles config text; `name` (default `policy.hcl`) is the file name errors show. */
  static fromString(text: string, name?: string | undefined | null): Policy
  /**
   * Decides an action: an `Action` from the helpers, or an object in the fixture
   * `action` format.
   */
  decide(action: Action | object): Decision
  /** Replays a fixture file or directory (like `clawpatrol test`), one result per fixture. */
  test(path: string, recursive?: boolean | undefined | null): Array<FixtureResult>
  /** Typed names of the endpoints (`https.github`), in declaration order. */
  get endpoints(): Array<string>
  /** Warnings of the load, rendered. */
  get warnings(): Array<string>
}

/** An action from an object in the fixture `action` format (validated now). */
export declare function actionFromObject(action: any): Action

/** The result of replaying one fixture file. */
export interface FixtureResult {
  /** The fixture path. */
  path: string
  /** `ok`, `fail` or `error`. */
  status: string
  /** The error text for `error`. */
  error?: string
  /** Expected `[verdict, rule, endpoint]`, when the fixture parsed. */
  want?: Array<string>
  /** Produced `[verdict, rule, endpoint]`, when it could be decided. */
  got?: Array<string>
}

/** An HTTP request (`url` absolute, or a path), with the facts the gateway would derive. */
export declare function httpAction(method: string, url: string, options?: RequestOptions | undefined | null): Action

/** A Kubernetes API request (method + URL), decomposed into `k8s.*` facts like the gateway. */
export declare function k8sAction(method: string, url: string, options?: RequestOptions | undefined | null): Action

/** Options of `httpAction` and `k8sAction`. */
export interface RequestOptions {
  /** Request headers (one value per name). */
  headers?: Record<string, string>
  /** The request body. */
  body?: string | Buffer
  /** The dispatched credential's name. */
  credential?: string
  /** The typed endpoint name, when known. */
  endpoint?: string
}

/**
 * A SQL text (one or more statements) for a `postgres` or `clickhouse_native` endpoint;
 * `decide()` derives every statement with the gateway's parser and decides each.
 */
export declare function sqlAction(statement: string, options?: SqlActionOptions | undefined | null): Action

/** Options of `sqlAction`. */
export interface SqlActionOptions {
  /** The session database. */
  database?: string
  /** The host the agent addressed. */
  host?: string
  /** The dispatched credential's name. */
  credential?: string
  /** The typed endpoint name, when known. */
  endpoint?: string
  /** The text was cut at the inspection buffer. */
  truncated?: boolean
}

/** An SSH channel action (`verb`: pty, exec, shell, subsystem, forward). */
export declare function sshAction(verb: string, options?: SshActionOptions | undefined | null): Action

/** Options of `sshAction`. */
export interface SshActionOptions {
  /** The exec command line. */
  command?: string
  /** The subsystem name. */
  subsystem?: string
  /** The direct-tcpip destination host. */
  forwardHost?: string
  /** The direct-tcpip destination port. */
  forwardPort?: number
  /** The SSH user. */
  user?: string
  /** Buffered stdin. */
  stdin?: string
  /** The host the agent addressed. */
  host?: string
  /** The dispatched credential's name. */
  credential?: string
  /** The typed endpoint name, when known. */
  endpoint?: string
  /** Stdin was cut at the inspection buffer. */
  truncated?: boolean
}

/** The version of the clawpatrol engine inside this addon. */
export declare function version(): string
