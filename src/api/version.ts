/** The version reported in the greeting, Received headers and `--version`. */
export const VERSION = "1.0.0";
