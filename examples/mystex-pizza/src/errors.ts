/** The demo's two expected kinds of failure; anything else is a bug and prints its stack. */

/** A mistake in how the demo was called: exit 2, message only. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** An expected setup failure (a database that cannot be reached, a queue in use): exit 1, message only. */
export class SetupError extends Error {
  override name = 'SetupError';
}
