// As main.ts does at start-up: `import … from "qpsmtpd"` works for plugins loaded from anywhere.
import * as api from "../src/plugin_api.ts";
import { installPluginModule } from "../src/runtime/runtime.ts";

installPluginModule(api as unknown as Record<string, unknown>);
