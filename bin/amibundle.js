#!/usr/bin/env node
import { amibundleMain, finish } from '../dist/cli/main.js';

finish(amibundleMain(process.argv.slice(2)));
