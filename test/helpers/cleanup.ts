// Vitest setup file: after each test file (its own afterAll hooks have stopped its processes),
// the temp directories it made go.
import { afterAll } from 'vitest';
import { removeTempDirs } from './tmp.js';

afterAll(() => removeTempDirs());
