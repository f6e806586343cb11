/** The shape of local/emulators.mjs, which is plain ESM and loaded with a native import(). */
export interface Emulators {
  sqsEndpoint: string;
  dynamoEndpoint: string;
  stop(): Promise<void>;
}

export interface EmulatorsModule {
  startEmulators(options?: { sqsPort?: number; dynamoPort?: number }): Promise<Emulators>;
}
