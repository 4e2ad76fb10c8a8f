export { CliError, DEFAULT_API_URL, ExitCode, getJson, type ApiResponse } from './api.js';
export { fields, table, type OutputFormat } from './output.js';
