// The small part of the Mattermost web app's plugin API this plugin uses.
// (The full typings live in the mattermost-webapp repository; they are not
// published as a package we can depend on without pulling in the web app.)

import type {ComponentType, ReactNode} from 'react';

/**
 * What the System Console hands a custom setting's component (the ones this
 * plugin reads; the web app passes more).
 */
export interface CustomSettingProps {
    id: string;
    label?: ReactNode;
    /** The setting's help_text from plugin.json, already rendered. */
    helpText?: ReactNode;
    disabled?: boolean;
}

/** The registry handed to a plugin's initialize; methods are added here as the plugin starts using them. */
export interface PluginRegistry {
    /**
     * Renders component in place of the plugin setting named key (a setting
     * of type "custom" in plugin.json). With showTitle the setting's
     * display_name is shown beside it, like any other setting.
     */
    registerAdminConsoleCustomSetting(
        key: string,
        component: ComponentType<CustomSettingProps>,
        options?: {showTitle?: boolean},
    ): void;

    /**
     * Renders component in the channel header's icon group, handed the
     * current channel and the person's membership (Mattermost 11.5+).
     */
    registerChannelHeaderIcon(component: ComponentType<{channel?: {id: string}}>): string;

    /** Renders component under every post's message, handed the post's ID. */
    registerPostMessageAttachmentComponent(component: ComponentType<{postId: string}>): string;
}

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
        /** The path Mattermost is served under ("" or e.g. "/chat"); set by the web app. */
        basename?: string;
    }
}
