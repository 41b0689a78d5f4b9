#!/usr/bin/env node
import { dropInMain, finish } from '../dist/cli-bundle/main.js';

finish(dropInMain('ec2-delete-bundle', process.argv.slice(2)));
