// The small part of the Mattermost web app's plugin API this plugin uses.
// (The full typings live in the mattermost-webapp repository; they are not
// published as a package we can depend on without pulling in the web app.)

/** The registry handed to a plugin's initialize; its register* methods are added here as the plugin starts using them. */
export type PluginRegistry = Record<string, unknown>;

/** The web app's Redux store. */
export interface Store {
    dispatch: (action: unknown) => unknown;
    getState: () => unknown;
    subscribe: (listener: () => void) => () => void;
}

export interface PluginClass {
    initialize(registry: PluginRegistry, store: Store): void | Promise<void>;
    uninitialize?(): void;
}

declare global {
    interface Window {
        registerPlugin(pluginId: string, plugin: PluginClass): void;
    }
}
