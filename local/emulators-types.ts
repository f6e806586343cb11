/** The shape of local/emulators.mjs, which is plain ESM and loaded with a native import(). */
export interface Emulators {
  sqsEndpoint: string;
  dynamoEndpoint: string;
  stop(): Promise<void>;
}

/** A listening socket, as the operating system reports it (server.address()). */
export interface BoundAddress {
  name: string;
  address: string;
  port: number;
}

/** Emulators this process started: it can ask where their sockets are bound. */
export interface StartedEmulators extends Emulators {
  listening(): BoundAddress[];
}

export interface EmulatorsModule {
  startEmulators(options?: { sqsPort?: number; dynamoPort?: number }): Promise<StartedEmulators>;
}
