/**
 * A rate-limit bucket's name, shared by every workflow of the organization
 * that names it. A leaf module: step types (http) use it in their schema
 * without importing the registry back through definition/flow-control.ts.
 */
export const BUCKET_NAME_PATTERN = '^[A-Za-z0-9_.:-]{1,100}$';
