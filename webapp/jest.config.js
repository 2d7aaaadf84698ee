// Jest runs the components' tests (src/**/*.test.ts[x]) in jsdom with
// React 18 from node_modules, as the Mattermost web app would provide it.
// ts-jest only transpiles (tsconfig's isolatedModules); tsc checks types.
module.exports = {
    testEnvironment: 'jsdom',
    roots: ['<rootDir>/src'],
    transform: {
        '^.+\\.tsx?$': ['ts-jest', {tsconfig: {jsx: 'react', module: 'commonjs', esModuleInterop: true, isolatedModules: true}}],
    },
    testTimeout: 10000,
};
