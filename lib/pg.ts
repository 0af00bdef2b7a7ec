import type pg from 'pg';

// Runs `use` on a client checked out of the pool. A checked-out client that
// loses its connection emits 'error' on itself, not on the pool; with no
// listener Node treats it as uncaught and the process (in Lambda, the execution
// environment) dies. The listener turns it into the failing query's rejection.
// A client whose work failed is destroyed rather than returned: its session
// state (an open transaction, temporary tables) is unknown.
export async function withClient<T>(
  pool: pg.Pool,
  use: (client: pg.PoolClient) => Promise<T>,
  options: { discardAfterUse?: boolean } = {},
): Promise<T> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost = error;
  };
  client.on('error', onError);
  let failed: Error | undefined;
  try {
    return await use(client);
  } catch (error) {
    failed = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.off('error', onError);
    const discard = lost ?? failed ?? (options.discardAfterUse === true ? true : undefined);
    client.release(discard);
  }
}
