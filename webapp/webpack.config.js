// Builds the plugin's web app into dist/main.js, the bundle_path of plugin.json.
//
// React and ReactDOM are not bundled: the Mattermost web app provides its own
// copies as window.React and window.ReactDOM, and a plugin must use those.
const path = require('path');

module.exports = (env, argv) => ({
    entry: './src/index.tsx',
    resolve: {
        extensions: ['.ts', '.tsx', '.js'],
    },
    module: {
        rules: [
            {
                test: /\.tsx?$/,
                exclude: /node_modules/,
                use: 'ts-loader',
            },
        ],
    },
    externals: {
        react: 'React',
        'react-dom': 'ReactDOM',
    },
    output: {
        path: path.join(__dirname, 'dist'),
        publicPath: '/',
        filename: 'main.js',
        clean: true,
    },
    devtool: argv.mode === 'production' ? false : 'eval-cheap-module-source-map',
    performance: {
        hints: false,
    },
});
