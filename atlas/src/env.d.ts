// CSS files are bundled by esbuild into one stylesheet; importing one only adds it.
declare module '*.css';
