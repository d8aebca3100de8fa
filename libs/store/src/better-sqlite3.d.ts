/**
 * The subset of better-sqlite3's API this library uses. `@types/better-sqlite3` is not
 * installed in the workspace, so the shape is declared here (from better-sqlite3 12 docs).
 */
declare module 'better-sqlite3' {
  namespace Database {
    interface RunResult {
      changes: number;
      lastInsertRowid: number | bigint;
    }
    interface Statement<P extends unknown[] = unknown[]> {
      run(...params: P): RunResult;
      get(...params: P): unknown;
      all(...params: P): unknown[];
    }
    interface Transaction<F extends (...args: never[]) => unknown> {
      (...args: Parameters<F>): ReturnType<F>;
      immediate(...args: Parameters<F>): ReturnType<F>;
    }
    interface Database {
      readonly open: boolean;
      readonly inTransaction: boolean;
      readonly name: string;
      prepare<P extends unknown[] = unknown[]>(sql: string): Statement<P>;
      exec(sql: string): this;
      pragma(source: string, options?: { simple?: boolean }): unknown;
      transaction<F extends (...args: never[]) => unknown>(fn: F): Transaction<F>;
      close(): this;
    }
    interface Options {
      readonly?: boolean;
      fileMustExist?: boolean;
      timeout?: number;
    }
    interface SqliteError extends Error {
      code: string;
    }
  }
  interface DatabaseConstructor {
    new (filename: string, options?: Database.Options): Database.Database;
    SqliteError: new (message: string, code: string) => Database.SqliteError;
  }
  const Database: DatabaseConstructor;
  export = Database;
}
