export {
  AdminApi,
  CliError,
  DEFAULT_API_URL,
  ExitCode,
  exitCodeForStatus,
  getJson,
  type ApiResponse,
  type Credentials,
} from './api.js';
export { completionScript, SHELLS, type Shell } from './completion.js';
export { fields, objectDetails, objectTable, table, type OutputFormat } from './output.js';
export { buildProgram } from './program.js';
